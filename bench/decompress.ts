/**
 * The format check's decompression (core/backup/formats.ts), two ways on the same compressed body:
 *   (a) node:zlib's default output chunk (`chunkSize` 16 KiB, Node.js "Zlib: Class Options")
 *   (b) ZLIB_CHUNK_BYTES (1 MiB), what the check uses
 * for gzip and, where node:zlib has it (Node.js 22.15+, the runner's image), zstd. The body is
 * `mib` MiB of JSON lines shaped like Infrahub's attribute nodes (random uuids among repeated
 * field names), compressed in memory first (not timed), then fed in 64 KiB writes as a dump's
 * stream feeds the check, and the output discarded. Best of two interleaved rounds; CPU is the
 * process's (main thread and zlib's thread pool).
 *
 * Only node: built-ins are imported, so the runner's Node.js runs this file directly (type
 * stripping): `node bench/decompress.ts <MiB>` prints the rows as JSON.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Transform } from 'node:stream';
import * as zlib from 'node:zlib';

/** Equal to core/backup/formats.ts ZLIB_CHUNK_BYTES (this file imports nothing of ours; a unit test holds them equal). */
export const CHECK_CHUNK_BYTES = 1024 * 1024;

export interface DecompressRow {
  codec: 'gzip' | 'zstd';
  compressedBytes: number;
  decompressedBytes: number;
  /** Best wall time (ms) and its CPU time (ms) with zlib's default chunk, then with the check's. */
  defaultChunk: { wallMs: number; cpuMs: number };
  checkChunk: { wallMs: number; cpuMs: number };
  node: string;
}

type ZstdFactory = (options: zlib.ZlibOptions & { params?: Record<number, number> }) => Transform;
const zstd = zlib as unknown as { createZstdCompress?: ZstdFactory; createZstdDecompress?: ZstdFactory };

function body(mib: number): Buffer {
  const pieces: Buffer[] = [];
  let bytes = 0;
  let n = 0;
  while (bytes < mib * 1024 * 1024) {
    const lines: string[] = [];
    for (let i = 0; i < 8192; i++, n++)
      lines.push(
        `{"uuid":"${randomBytes(8).toString('hex')}","kind":"Attribute","name":"description","branch":"main","from":${1733100000 + n},"is_default":false}\n`,
      );
    const piece = Buffer.from(lines.join(''));
    pieces.push(piece);
    bytes += piece.length;
  }
  return Buffer.concat(pieces);
}

async function drain(stream: Transform, input: Buffer): Promise<number> {
  let out = 0;
  stream.on('data', (d: Buffer) => {
    out += d.length;
  });
  const ended = once(stream, 'end');
  for (let offset = 0; offset < input.length; offset += 64 * 1024) {
    if (!stream.write(input.subarray(offset, offset + 64 * 1024))) await once(stream, 'drain');
  }
  stream.end();
  await ended;
  return out;
}

async function timed(make: () => Transform, input: Buffer) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const out = await drain(make(), input);
  const cpu = process.cpuUsage(cpu0);
  return { wallMs: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, out };
}

/** Runs (a) and (b) for gzip and, where available, zstd on `mib` MiB of generated text. */
export async function decompressBenchmark(mib: number): Promise<DecompressRow[]> {
  const plain = body(mib);
  const codecs: Array<{
    codec: 'gzip' | 'zstd';
    compressed: Buffer;
    make: (chunkSize?: number) => Transform;
  }> = [
    {
      codec: 'gzip',
      compressed: zlib.gzipSync(plain, { level: 6 }),
      make: (chunkSize) => zlib.createGunzip(chunkSize ? { chunkSize } : {}),
    },
  ];
  if (zstd.createZstdCompress && zstd.createZstdDecompress) {
    const decompress = zstd.createZstdDecompress;
    const compressor = zstd.createZstdCompress({});
    const chunks: Buffer[] = [];
    compressor.on('data', (d: Buffer) => chunks.push(d));
    const done = once(compressor, 'end');
    compressor.end(plain);
    await done;
    codecs.push({
      codec: 'zstd',
      compressed: Buffer.concat(chunks),
      make: (chunkSize) => decompress(chunkSize ? { chunkSize } : {}),
    });
  }
  const rows: DecompressRow[] = [];
  for (const { codec, compressed, make } of codecs) {
    let a: Awaited<ReturnType<typeof timed>> | undefined;
    let b: Awaited<ReturnType<typeof timed>> | undefined;
    for (let round = 0; round < 2; round++) {
      const x = await timed(() => make(), compressed);
      const y = await timed(() => make(CHECK_CHUNK_BYTES), compressed);
      if (x.out !== plain.length || y.out !== plain.length)
        throw new Error(`${codec}: decompressed ${x.out} and ${y.out} bytes, not ${plain.length}`);
      if (!a || x.wallMs < a.wallMs) a = x;
      if (!b || y.wallMs < b.wallMs) b = y;
    }
    if (!a || !b) throw new Error('no round ran');
    rows.push({
      codec,
      compressedBytes: compressed.length,
      decompressedBytes: plain.length,
      defaultChunk: { wallMs: a.wallMs, cpuMs: a.cpuMs },
      checkChunk: { wallMs: b.wallMs, cpuMs: b.cpuMs },
      node: process.version,
    });
  }
  return rows;
}

export function formatDecompress(rows: readonly DecompressRow[]): string[] {
  const MiB = 1024 * 1024;
  const s = (m: { wallMs: number; cpuMs: number }) =>
    `${(m.wallMs / 1000).toFixed(2).padStart(6)} s (CPU ${(m.cpuMs / 1000).toFixed(2)} s)`;
  return rows.flatMap((r) => [
    `  ${r.codec} on Node.js ${r.node}: ${(r.compressedBytes / MiB).toFixed(0)} MiB compressed, ${(r.decompressedBytes / MiB).toFixed(0)} MiB out`,
    `    (a) default 16 KiB output chunk ${s(r.defaultChunk)}`,
    `    (b) the check's 1 MiB chunk     ${s(r.checkChunk)}`,
    `    ratio a/b = ${(r.defaultChunk.wallMs / r.checkChunk.wallMs).toFixed(2)} (wall), ${(r.defaultChunk.cpuMs / r.checkChunk.cpuMs).toFixed(2)} (CPU)`,
  ]);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await decompressBenchmark(Number(process.argv[2] ?? 1024))));
}
