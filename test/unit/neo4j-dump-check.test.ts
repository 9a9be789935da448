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

/**
 * A hand-made frame with every Frame_Header field chosen (RFC 8878 section 3.1.1.1): a
 * Window_Descriptor byte when not single-segment, a Dictionary_ID of `dictionaryBytes` bytes, a
 * Frame_Content_Size of `contentSizeBytes` bytes (2 bytes hold the size minus 256), then `blocks`
 * (3-byte headers as given, RLE blocks carry their one byte) and the content checksum.
 */
function headedFrame(o: {
  window?: number;
  dictionaryBytes?: 0 | 1 | 2 | 4;
  dictionaryId?: number;
  contentSizeBytes?: 0 | 1 | 2 | 4 | 8;
  contentSize?: bigint;
  content: Buffer;
  blocks: Array<{ type: 0 | 1; size: number; bytes: Buffer }>;
}): Buffer {
  const did = o.dictionaryBytes ?? 0;
  const fcsBytes = o.contentSizeBytes ?? 0;
  const singleSegment = o.window === undefined;
  const fcsFlag = { 0: 0, 1: 0, 2: 1, 4: 2, 8: 3 }[fcsBytes];
  const descriptor = (fcsFlag << 6) | (singleSegment ? 0x20 : 0) | 0x04 | { 0: 0, 1: 1, 2: 2, 4: 3 }[did];
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, descriptor])];
  if (!singleSegment) parts.push(Buffer.from([o.window as number]));
  if (did) {
    const id = Buffer.alloc(did);
    id.writeUIntLE(o.dictionaryId ?? 0, 0, did);
    parts.push(id);
  }
  if (fcsBytes) {
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE((o.contentSize ?? BigInt(o.content.length)) - (fcsBytes === 2 ? 256n : 0n));
    parts.push(size.subarray(0, fcsBytes));
  }
  o.blocks.forEach((block, n) => {
    const header = Buffer.alloc(3);
    header.writeUIntLE((n === o.blocks.length - 1 ? 1 : 0) | (block.type << 1) | (block.size << 3), 0, 3);
    parts.push(header, block.bytes);
  });
  const sum = Buffer.alloc(4);
  sum.writeUInt32LE(Number(xxh.h64Raw(new Uint8Array(o.content)) & 0xffffffffn));
  return Buffer.concat([...parts, sum]);
}

/** The verdicts of `dump` fed whole, a byte at a time, and in random pieces of 1 to 5,000 bytes. */
async function verdictsInEveryPiece(dump: Buffer): Promise<string[]> {
  const verdicts = [await verdict(dump, dump.length), await verdict(dump, 1)];
  const check = neo4jDumpCheck();
  let failed: string | undefined;
  for (let offset = 0; offset < dump.length && !failed; ) {
    const n = 1 + Math.floor(Math.random() * 5000);
    await check.write(dump.subarray(offset, offset + n)).catch((err: Error) => {
      failed = err.message;
    });
    offset += n;
  }
  if (failed) check.abort();
  verdicts.push(failed ? { status: 'problem', problem: failed } : await check.end());
  return verdicts.map((v) => ('problem' in v ? `problem: ${v.problem}` : v.status));
}

// Found in review of issue 19: the fzstd path (Node.js before 22.15, where `verify --deep` may run)
// passed frames that libzstd (the zstd CLI, node:zlib, zstd-jni in neo4j-admin) refuses, and
// allocated whatever window a frame header asked for. Each case below is refused by `zstd -t` 1.5.4
// and by Node.js 22's zstdDecompressSync; the check refuses it on both paths, in any pieces.
describe('neo4jDumpCheck: zstd frames libzstd refuses', () => {
  const content = text(0.004);
  const raw = (bytes: Buffer) => ({ type: 0 as const, size: bytes.length, bytes });

  it('frames with a window descriptor, dictionary id 0 of 1, 2 or 4 bytes, and content sizes of 0 to 8 bytes pass', async () => {
    const frames = [
      headedFrame({ window: 0x58, content, blocks: [raw(content)] }),
      // A 1 KiB window (the smallest): blocks of at most 1 KiB.
      headedFrame({
        window: 0x00,
        content,
        blocks: Array.from({ length: Math.ceil(content.length / 1024) }, (_, n) =>
          raw(content.subarray(n * 1024, (n + 1) * 1024)),
        ),
      }),
      ...([1, 2, 4] as const).map((d) =>
        headedFrame({ dictionaryBytes: d, contentSizeBytes: 4, content, blocks: [raw(content)] }),
      ),
      // One byte holds 0-255, two bytes 256-65791 (the size minus 256).
      ...([1, 2, 4, 8] as const).map((s) => {
        const part = content.subarray(0, s === 1 ? 255 : 300);
        return headedFrame({ contentSizeBytes: s, content: part, blocks: [raw(part)] });
      }),
      headedFrame({ window: 0x58, contentSizeBytes: 8, content, blocks: [raw(content)] }),
      headedFrame({ content: Buffer.alloc(0), contentSizeBytes: 1, blocks: [raw(Buffer.alloc(0))] }),
      headedFrame({
        window: 0x58,
        content: Buffer.alloc(500, 0x61),
        blocks: [{ type: 1, size: 500, bytes: Buffer.from('a') }],
      }),
    ];
    for (const [n, frame] of frames.entries())
      expect(await verdictsInEveryPiece(dzv1(frame)), `frame ${n}`).toEqual(['ok', 'ok', 'ok']);
  });

  it('a frame that names a dictionary (1, 2 or 4 bytes) is refused: none is at hand to decode it with', async () => {
    for (const d of [1, 2, 4] as const) {
      const frame = headedFrame({
        dictionaryBytes: d,
        dictionaryId: 7,
        contentSizeBytes: 4,
        content,
        blocks: [raw(content)],
      });
      for (const v of await verdictsInEveryPiece(dzv1(frame)))
        expect(v, `${d} bytes`).toMatch(/dictionary 7/);
    }
  });

  it('a frame whose window is over 128 MiB (window descriptor or single-segment content size) is refused without allocating it', async () => {
    const before = process.memoryUsage().arrayBuffers;
    for (const frame of [
      headedFrame({ window: (20 << 3) | 7, content, blocks: [raw(content)] }), // 1.875 GiB
      headedFrame({ window: 18 << 3, content, blocks: [raw(content)] }), // 256 MiB
      headedFrame({ contentSizeBytes: 4, contentSize: 1n << 30n, content, blocks: [raw(content)] }),
      headedFrame({ contentSizeBytes: 8, contentSize: 1n << 40n, content, blocks: [raw(content)] }),
    ])
      for (const v of await verdictsInEveryPiece(dzv1(frame))) expect(v).toMatch(/window of \d+ bytes/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('a block larger than the frame allows (128 KiB, or a smaller window), RLE ones too, is refused', async () => {
    const rle = (size: number, window: number) =>
      headedFrame({
        window,
        content: Buffer.alloc(size, 0x61),
        blocks: [{ type: 1, size, bytes: Buffer.from('a') }],
      });
    const big = Buffer.alloc(2000, 0x62);
    for (const frame of [
      rle(200_000, 0x58),
      rle(2000, 0x00),
      headedFrame({ window: 0x00, content: big, blocks: [raw(big)] }),
    ])
      for (const v of await verdictsInEveryPiece(dzv1(frame)))
        expect(v).toMatch(/over the \d+ bytes its frame allows/);
  });

  it('a frame whose content is not the size its header declares is refused', async () => {
    for (const [bytes, size] of [
      [4, content.length + 1],
      [4, content.length - 1],
      [8, content.length + 1],
      [2, content.length - 1],
    ] as const) {
      const frame = headedFrame({
        window: 0x58,
        contentSizeBytes: bytes,
        contentSize: BigInt(size),
        content,
        blocks: [raw(content)],
      });
      for (const v of await verdictsInEveryPiece(dzv1(frame)))
        expect(v, `${bytes} bytes: ${size}`).toMatch(/problem: .*corrupt|content size/i);
    }
  });
});

// Found in review of issue 19: node:zlib's gunzip (Node.js 20 and 22) stops at a zero byte after a
// member and ignores everything after it, so a DGV1 dump with bytes appended after a 0x00 (zeros, a
// line of text, a whole second member) passed. `gzip -t` says "trailing garbage ignored".
describe('neo4jDumpCheck: bytes after a gzip body', () => {
  const member = zlib.gzipSync(text(0.05));
  const dgv1 = (...parts: Buffer[]) => Buffer.concat([Buffer.from('DGV1', 'latin1'), ...parts]);

  it('one member or two pass', async () => {
    expect(await verdictsInEveryPiece(dgv1(member))).toEqual(['ok', 'ok', 'ok']);
    expect(await verdictsInEveryPiece(dgv1(member, member))).toEqual(['ok', 'ok', 'ok']);
  });

  it('zeros, a zero byte and text, or a zero byte and another member after the body are found', async () => {
    for (const [what, tail] of [
      ['zeros', Buffer.alloc(512)],
      ['a zero byte and text', Buffer.concat([Buffer.from([0]), Buffer.from('WARN dump done\n')])],
      ['a zero byte and a member', Buffer.concat([Buffer.from([0]), member])],
    ] as const)
      for (const v of await verdictsInEveryPiece(dgv1(member, tail)))
        expect(v, what).toMatch(/problem: its gzip body has \d+ bytes after its end/);
  });
});
