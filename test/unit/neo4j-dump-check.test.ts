/**
 * neo4jDumpCheck (core/backup/formats.ts) on bodies that decompress to many of its 1 MiB output
 * chunks (ZLIB_CHUNK_BYTES, issue 19: zlib's 16 KiB default cost a thread-pool round trip per 16 KiB
 * of a 4.5 GiB decompressed dump): a whole body passes, a truncated or damaged one is found, fed in
 * the 64 KiB pieces a dump's stream arrives in. Real dumps are checked in dump-format.test.ts.
 */
import { randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import xxhash from 'xxhash-wasm';
import { CHECK_CHUNK_BYTES } from '../../bench/decompress.js';
import { neo4jDumpCheck, ZLIB_CHUNK_BYTES } from '../../core/backup/formats.js';

/** About `mib` MiB of JSON lines with random uuids (compresses about 5:1, as a dump's body does). */
function text(mib: number): Buffer {
  const lines: string[] = [];
  let bytes = 0;
  for (let n = 0; bytes < mib * 1024 * 1024; n++) {
    const line = `{"uuid":"${randomBytes(8).toString('hex')}","kind":"Attribute","name":"description","n":${n}}\n`;
    lines.push(line);
    bytes += line.length;
  }
  return Buffer.from(lines.join(''));
}

async function verdict(dump: Buffer, piece = 64 * 1024) {
  const check = neo4jDumpCheck();
  try {
    for (let offset = 0; offset < dump.length; offset += piece)
      await check.write(dump.subarray(offset, offset + piece));
  } catch (err) {
    check.abort();
    return { status: 'problem', problem: (err as Error).message };
  }
  return check.end();
}

const zstdCompress = (zlib as unknown as { zstdCompressSync?: (b: Buffer, o: object) => Buffer })
  .zstdCompressSync;
const body = text(6);
const codecs = [
  { magic: 'DGV1', codec: 'gzip', compress: (b: Buffer) => zlib.gzipSync(b), available: true },
  {
    magic: 'DZV1',
    codec: 'zstd',
    // With the content checksum, as neo4j-admin's dumps carry it: without one, a changed byte inside a
    // block can decompress to other bytes of the same length, which no decoder can tell.
    compress: (b: Buffer) =>
      (zstdCompress as (x: Buffer, o: object) => Buffer)(b, {
        params: { [(zlib.constants as unknown as Record<string, number>).ZSTD_c_checksumFlag as number]: 1 },
      }),
    // node:zlib has zstd from Node.js 22.15 (the runner's image); on Node.js 20 the check uses fzstd,
    // and this file has no zstd compressor to make the body with.
    available: typeof zstdCompress === 'function',
  },
];

describe('neo4jDumpCheck on bodies of many output chunks', () => {
  it('decompresses with 1 MiB output chunks, the benchmark measuring the same size', () => {
    expect(ZLIB_CHUNK_BYTES).toBe(1024 * 1024);
    expect(CHECK_CHUNK_BYTES).toBe(ZLIB_CHUNK_BYTES);
  });

  for (const { magic, codec, compress, available } of codecs) {
    it.skipIf(!available)(
      `${codec}: a whole body passes; truncated or with a byte changed, it does not`,
      async () => {
        const dump = Buffer.concat([Buffer.from(magic, 'latin1'), compress(body)]);
        expect(body.length).toBeGreaterThan(5 * ZLIB_CHUNK_BYTES);
        expect(await verdict(dump)).toEqual({ status: 'ok', format: 'neo4j-dump' });

        const truncated = await verdict(dump.subarray(0, dump.length - 1000));
        expect(truncated.status).toBe('problem');

        const damaged = Buffer.from(dump);
        const middle = Math.floor(damaged.length / 2);
        damaged[middle] = (damaged[middle] as number) ^ 0xff;
        const changed = await verdict(damaged);
        expect(changed).toMatchObject({ status: 'problem' });
        expect(JSON.stringify(changed)).toMatch(new RegExp(`${codec}|corrupt|checksum`, 'i'));
      },
    );
  }
});

const xxh = await xxhash();
/**
 * A zstd frame made by hand (RFC 8878 section 3.1.1) of Raw blocks (Block_Type 0: the content as
 * is), so it needs no compressor: the header descriptor says Single_Segment with a 4-byte content
 * size, and, with `checksum`, a Content_Checksum (the low 32 bits of XXH64, seed 0) ends it.
 */
function rawFrame(content: Buffer, options: { checksum?: boolean; blockBytes?: number } = {}): Buffer {
  const blockBytes = options.blockBytes ?? 1000;
  const parts: Buffer[] = [
    Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x80 | 0x20 | (options.checksum ? 0x04 : 0)]),
  ];
  const size = Buffer.alloc(4);
  size.writeUInt32LE(content.length);
  parts.push(size);
  for (let offset = 0; offset < content.length || offset === 0; offset += blockBytes) {
    const block = content.subarray(offset, offset + blockBytes);
    const last = offset + blockBytes >= content.length ? 1 : 0;
    const header = Buffer.alloc(3);
    header.writeUIntLE(last | (0 << 1) | (block.length << 3), 0, 3);
    parts.push(header, block);
    if (content.length === 0) break;
  }
  if (options.checksum) {
    const sum = Buffer.alloc(4);
    sum.writeUInt32LE(Number(xxh.h64Raw(new Uint8Array(content)) & 0xffffffffn));
    parts.push(sum);
  }
  return Buffer.concat(parts);
}
const skippable = (bytes: Buffer) => {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0x184d2a53, 0);
  head.writeUInt32LE(bytes.length, 4);
  return Buffer.concat([head, bytes]);
};
const dzv1 = (...frames: Buffer[]) => Buffer.concat([Buffer.from('DZV1', 'latin1'), ...frames]);

// Issue 19: Node.js 22's node:zlib zstd stream (the runner image's decompressor) reports no error for
// a stream cut after the first frame's header, ignores everything after the first frame, and passes
// a cut content checksum. The check walks the frames itself (ZstdFrames) and decompresses each.
describe('neo4jDumpCheck: a zstd body cut, appended to or of several frames', () => {
  const a = text(0.01);
  const b = text(0.01);
  const one = rawFrame(a, { checksum: true });
  const two = rawFrame(b, { checksum: true });

  it('whole bodies pass, fed in pieces that split every field: one frame, two, a skippable frame between, no checksum', async () => {
    for (const dump of [
      dzv1(one),
      dzv1(one, two),
      dzv1(one, skippable(Buffer.from('meta')), two),
      dzv1(rawFrame(a)),
    ])
      for (const piece of [1, 3, 7, 4096])
        expect(await verdict(dump, piece), `piece ${piece}`).toEqual({ status: 'ok', format: 'neo4j-dump' });
  });

  it('a body cut anywhere is found: in the magic, the header, a block header, a block, the checksum', async () => {
    const whole = dzv1(one, two);
    const cuts = [
      6,
      10,
      4 + 9 + 2,
      4 + 9 + 3 + 500,
      4 + one.length - 2,
      4 + one.length + 2,
      whole.length - 1,
    ];
    for (const cut of cuts) {
      const v = await verdict(whole.subarray(0, cut), 5);
      expect(v, `cut at ${cut}`).toMatchObject({ status: 'problem' });
    }
  });

  it('bytes appended after the last frame (a log line) are found', async () => {
    const v = await verdict(dzv1(one, Buffer.from('2026-12-02 12:00:00.000+0000 WARN dump done\n')));
    expect(v).toMatchObject({ status: 'problem' });
    expect(JSON.stringify(v)).toMatch(/not a zstd frame|corrupt/);
  });

  it('a changed byte in the second frame is found (the second frame is decompressed and checked too)', async () => {
    const damaged = Buffer.from(two);
    damaged[200] = (damaged[200] as number) ^ 0x01;
    expect(await verdict(dzv1(one, damaged))).toMatchObject({ status: 'problem' });
  });

  it('a reserved descriptor bit or block type is refused', async () => {
    const reservedBit = Buffer.from(one);
    reservedBit[4] = (reservedBit[4] as number) | 0x08;
    expect(await verdict(dzv1(reservedBit))).toMatchObject({ status: 'problem' });
    const reservedType = Buffer.from(one);
    reservedType[9] = (reservedType[9] as number) | 0x06;
    expect(await verdict(dzv1(reservedType))).toMatchObject({ status: 'problem' });
  });

  it.skipIf(!codecs[1]?.available)(
    'node:zlib zstd (Node.js 22.15+): a compressed body cut by 1, 4 or 1,000 bytes, a second frame damaged, or text appended is found',
    async () => {
      const compress = (x: Buffer) =>
        (zlib as unknown as { zstdCompressSync: (b: Buffer, o: object) => Buffer }).zstdCompressSync(x, {
          params: {
            [(zlib.constants as unknown as Record<string, number>).ZSTD_c_checksumFlag as number]: 1,
          },
        });
      const first = compress(text(2));
      const second = compress(text(2));
      expect(await verdict(dzv1(first, second))).toEqual({ status: 'ok', format: 'neo4j-dump' });
      for (const cut of [1, 4, 1000])
        expect(await verdict(dzv1(first.subarray(0, first.length - cut))), `cut ${cut}`).toMatchObject({
          status: 'problem',
        });
      const damaged = Buffer.from(second);
      damaged[Math.floor(damaged.length / 2)] = (damaged[Math.floor(damaged.length / 2)] as number) ^ 0x01;
      expect(await verdict(dzv1(first, damaged))).toMatchObject({ status: 'problem' });
      expect(await verdict(dzv1(first, Buffer.from('WARN\n')))).toMatchObject({ status: 'problem' });
    },
  );
});
