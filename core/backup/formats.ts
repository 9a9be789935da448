/**
 * Format checks of the dumps a backup holds, fed the bytes as they stream (at backup time, while
 * they are uploaded; in `verify --deep`, while they are downloaded and hashed), so a dump with stray
 * bytes mixed into it (a tool's log line written into its standard output) never passes as a good
 * backup and is found before a restore needs it.
 *
 * - PostgreSQL custom format (`prefect.dump`): `pg_restore --file=/dev/null`, reading the whole
 *   archive from standard input. The PostgreSQL documentation (pg_restore, "-l/--list") has `--list`
 *   read only the archive's header and table of contents; on a non-seekable input it stops there, so
 *   a line inserted after the TOC (inside a table's data) would pass it. Writing the script to
 *   /dev/null instead reads every data block as a restore would (block ids, chunk lengths,
 *   decompression), in one streaming pass: constant memory (pg_restore's own buffers), and CPU for
 *   one decompression, much less than pg_dump's compression of the same bytes. It needs no server.
 * - Neo4j 5 and 2025 `database dump` (`database/<db>.dump`; the same format, checked with 5.26 and
 *   2025.10.1 in test/integration/dump-format.test.ts): its header. Neo4j 5.26's
 *   `org.neo4j.dbms.archive.DumpFormatSelector` reads four magic bytes, `DZV1` (zstd) or `DGV1`
 *   (gzip), and the compressed stream follows: a zstd frame (magic 28 B5 2F FD) or a gzip member
 *   (1F 8B). `neo4j-admin database dump --to-stdout --verbose` writes its version banner
 *   ("neo4j 5.26.26", "VM Name: ...") into standard output before that header; that is the fault
 *   this finds. After the header the whole body is decompressed in the same pass (gzip with
 *   node:zlib; zstd with node:zlib on Node.js 22.15+, else with fzstd plus the frame's XXH64 content
 *   checksum and content size; each zstd frame walked by ZstdFrames first), so damage inside the
 *   body is found too; the decompressed bytes (Neo4j's own archive of
 *   the store files) are not parsed further.
 * - Enterprise `.backup` files have headers of their own (`BZV1`, `BTV1`, `BZV2`, `BTV2` in the same
 *   jar's BackupFormatSelector); they are written to a file by `neo4j-admin database backup`, not
 *   streamed through stdout, and no real Enterprise backup can be made here, so they are not checked.
 */
import { once } from 'node:events';
import type { Transform } from 'node:stream';
import * as zlib from 'node:zlib';
import { createGunzip } from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import xxhash from 'xxhash-wasm';
import { DumpFormatError, ToolFailedError } from '../errors.js';
import { runTool } from '../tools/run-tool.js';
import { DATABASE_DIR, PREFECT_DUMP } from './layout.js';

/** The outcome of a check: `ok`, a `problem` (the bytes are not the format), or `unchecked` (no tool to check with). */
export type FormatVerdict =
  | { status: 'ok'; format: string }
  | { status: 'problem'; format: string; problem: string }
  | { status: 'unchecked'; format: string; reason: string };

/** A check fed a stream chunk by chunk. */
export interface FormatCheck {
  readonly format: string;
  /** Feeds the next chunk; throws (with the problem) as soon as the bytes are known to be wrong. */
  write(chunk: Buffer): Promise<void>;
  /** After the last chunk: the verdict. */
  end(): Promise<FormatVerdict>;
  /** Stops the check early (the stream failed for another reason). */
  abort(): void;
}

/** Thrown by `write` when the bytes are already known to be malformed. */
export class FormatProblem extends Error {
  constructor(readonly problem: string) {
    super(problem);
  }
}

export const NEO4J_DUMP_HEADERS: ReadonlyArray<{ magic: string; next: Buffer; codec: string }> = [
  { magic: 'DZV1', next: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), codec: 'zstd' },
  { magic: 'DGV1', next: Buffer.from([0x1f, 0x8b]), codec: 'gzip' },
];

const shown = (bytes: Buffer) =>
  `"${bytes
    .toString('latin1')
    .replace(/[^\x20-\x7e]/g, '.')
    .slice(0, 24)}" (hex ${bytes.subarray(0, 8).toString('hex')})`;

/** Why the first bytes of a file are not a Neo4j 5 or 2025 dump header, or undefined when they are. Needs 8 bytes. */
export function neo4jDumpHeaderProblem(head: Buffer): string | undefined {
  for (const h of NEO4J_DUMP_HEADERS) {
    if (head.subarray(0, 4).toString('latin1') !== h.magic) continue;
    if (head.subarray(4, 4 + h.next.length).equals(h.next)) return undefined;
    return `starts with ${h.magic} but no ${h.codec} stream follows: ${shown(head)}`;
  }
  return `does not start with a Neo4j 5 or 2025 dump header ("DZV1" + zstd or "DGV1" + gzip): it starts with ${shown(head)}`;
}

/** Decompresses a stream chunk by chunk, keeping only the codec's window; throws on malformed input. */
interface BodyDecoder {
  write(chunk: Buffer): Promise<void>;
  /** After the last chunk: the problem, or undefined when the whole body decompressed (and its checksum held). */
  end(): Promise<string | undefined>;
  abort(): void;
}

/**
 * The output chunk of the node:zlib streams that decompress a whole dump: 1 MiB instead of zlib's
 * 16 KiB default (`chunkSize`, Node.js "Zlib: Class Options"). A zlib stream works on the thread pool
 * and comes back to the main thread each time its output buffer fills, so a 744 MiB Neo4j dump
 * (about 4.5 GiB decompressed) made some 290,000 round trips; with 1 MiB about 4,500. Measured on
 * 1 GiB of zstd output with Node.js 22 here: 3.0-3.7 s with the default, 0.9 s with 1 MiB
 * (`npm run bench`, BENCH_ONLY=decompress).
 */
export const ZLIB_CHUNK_BYTES = 1024 * 1024;

/**
 * A body decompressed by a node:zlib stream: gunzip (its CRC-32 and length trailer checked by
 * zlib, further members decompressed too), or one zstd frame (its content checksum checked by
 * libzstd). zlib stops reading at a zero byte after a gzip member and drops the rest without an
 * error (node_zlib.cc: zero bytes are taken for padding); the stream's `bytesWritten` counts the
 * compressed bytes zlib consumed (Node.js lib/zlib.js processCallback), so fewer than were fed means
 * bytes after the body's end, found here.
 */
function zlibDecoder(stream: Transform, codec: string): BodyDecoder {
  let failed: string | undefined;
  let finished = false;
  let bytesIn = 0;
  let bytesOut = 0;
  const consumed = () => (stream as unknown as { bytesWritten: number }).bytesWritten;
  const done = new Promise<void>((resolve) => {
    stream.on('data', (d: Buffer) => {
      bytesOut += d.length;
    });
    stream.on('error', (err: Error) => {
      failed ??= `its ${codec} body is corrupt after ${bytesOut} decompressed bytes: ${err.message}`;
      resolve();
    });
    stream.on('end', () => {
      finished = true;
      resolve();
    });
    // Destroyed by abort(): a write waiting for 'drain' is not left waiting.
    stream.on('close', () => resolve());
  });
  return {
    async write(chunk) {
      if (failed) throw new FormatProblem(failed);
      bytesIn += chunk.length;
      if (!stream.write(chunk)) await Promise.race([once(stream, 'drain'), done]);
      if (failed) throw new FormatProblem(failed);
    },
    async end() {
      if (!failed) stream.end();
      await done;
      if (!failed && !finished) failed = `its ${codec} body ends early`;
      if (!failed && consumed() < bytesIn)
        failed = `its ${codec} body has ${bytesIn - consumed()} bytes after its end (compressed offset ${consumed()}) that ${codec} does not read`;
      return failed;
    },
    abort() {
      stream.destroy();
    },
  };
}

/**
 * One zstd frame on Node.js without zlib zstd (before 22.15): fzstd's streaming decoder (pure JS,
 * keeps the frame's window: 2 MiB in neo4j-admin 5.26's dumps). fzstd checks neither the frame's
 * content checksum (the low 32 bits of XXH64 of the content, RFC 8878 section 3.1.1) nor its
 * Frame_Content_Size (section 3.1.1.1.4), which libzstd both refuses a frame for: the checksum is
 * recomputed with xxhash-wasm and the size counted here. Fed one frame by framedZstdDecoder
 * (neo4j-admin writes one per dump), whose ZstdFrames has already refused what fzstd cannot bound
 * (a window over ZSTD_WINDOW_LIMIT_BYTES, a dictionary).
 */
function fzstdDecoder(): BodyDecoder {
  let failed: string | undefined;
  let bytesOut = 0;
  // The frame's first bytes (magic number and header: at most 18), then its last 8.
  let head = Buffer.alloc(0);
  let tail = Buffer.alloc(0);
  // Hashed as each block (at most 128 KiB) comes out, so nothing decompressed is kept.
  let hasher: ReturnType<Awaited<ReturnType<typeof xxhash>>['create64']> | undefined;
  const decoder = new ZstdDecompress((data) => {
    bytesOut += data.length;
    hasher?.update(data);
  });
  const push = (chunk: Uint8Array, final: boolean) => {
    try {
      decoder.push(chunk, final);
    } catch (err) {
      failed ??= `its zstd body is corrupt after ${bytesOut} decompressed bytes: ${(err as Error).message}`;
    }
  };
  return {
    async write(chunk) {
      if (failed) throw new FormatProblem(failed);
      if (head.length < 18) head = Buffer.concat([head, chunk.subarray(0, 18 - head.length)]);
      tail = Buffer.concat([tail, chunk.subarray(-8)]).subarray(-8);
      hasher ??= (await xxhash()).create64(0n);
      push(chunk, false);
      if (failed) throw new FormatProblem(failed);
    },
    async end() {
      if (failed) return failed;
      push(new Uint8Array(0), true);
      if (failed) return failed;
      const header = zstdFrameHeader(head.subarray(4));
      if (header?.contentSize !== undefined && header.contentSize !== bytesOut)
        return `its zstd body is corrupt: the frame's header says ${header.contentSize} bytes of content, it decompresses to ${bytesOut}`;
      // One frame: the content checksum is the frame's last 4 bytes (little-endian), when flagged.
      if (header?.checksum && tail.length >= 4) {
        const want = tail.readUInt32LE(tail.length - 4);
        const got = Number((hasher?.digest() ?? 0n) & 0xffffffffn);
        if (want !== got)
          return `its zstd content checksum does not hold: the frame says ${want.toString(16).padStart(8, '0')}, the ${bytesOut} decompressed bytes give ${got.toString(16).padStart(8, '0')}`;
      }
      return undefined;
    },
    abort() {},
  };
}

/**
 * The largest window (bytes) the check decodes: libzstd's default decoding limit
 * (ZSTD_MAXWINDOWSIZE_DEFAULT in zstd_decompress.c: 2^ZSTD_WINDOWLOG_LIMIT_DEFAULT (27) + 1). The zstd
 * CLI and node:zlib refuse a frame that needs more ("Frame requires too much memory for decoding")
 * unless told otherwise (`--long`, `--memory`); neo4j-admin's dumps use 2 MiB. fzstd has no limit
 * of its own and allocates the window a header asks for, up to 2 GiB.
 */
export const ZSTD_WINDOW_LIMIT_BYTES = 2 ** 27 + 1;

/** The largest block of a zstd frame (RFC 8878 section 3.1.1.2.4: Block_Maximum_Size is at most 128 KiB). */
const ZSTD_BLOCK_MAX_BYTES = 128 * 1024;

/** A zstd Frame_Header's fields (RFC 8878 section 3.1.1.1). */
export interface ZstdFrameHeader {
  /** Bytes of the header after the 4-byte magic number: the descriptor and the fields it sizes, 1 to 14. */
  size: number;
  /** Content_Checksum_Flag: 4 bytes of checksum follow the last block. */
  checksum: boolean;
  /** Dictionary_ID (0: none named). */
  dictionaryId: number;
  /** Frame_Content_Size (bytes of content), when the header holds one. */
  contentSize?: number;
  /** Window_Size (bytes, section 3.1.1.1.2): the content size in a single-segment frame. */
  windowSize: number;
}

/** The sizes of a Frame_Header's fields (bytes), from its descriptor (RFC 8878 section 3.1.1.1.1). */
function zstdHeaderLayout(descriptor: number) {
  const singleSegment = (descriptor & 0x20) !== 0;
  const fcsFlag = descriptor >> 6;
  const fcsBytes = fcsFlag === 0 ? (singleSegment ? 1 : 0) : ([0, 2, 4, 8][fcsFlag] as number);
  const didBytes = [0, 1, 2, 4][descriptor & 0x03] as number;
  return { singleSegment, didBytes, fcsBytes, size: 1 + (singleSegment ? 0 : 1) + didBytes + fcsBytes };
}

/**
 * Reads a Frame_Header from `bytes`, which start after the frame's magic number (RFC 8878 section
 * 3.1.1.1): Frame_Header_Descriptor (Frame_Content_Size_Flag, Single_Segment_Flag,
 * Content_Checksum_Flag, Dictionary_ID_Flag), Window_Descriptor (exponent and mantissa), then
 * Dictionary_ID and Frame_Content_Size, little-endian (2 bytes: the size minus 256).
 * @returns undefined while `bytes` hold less than the whole header
 */
export function zstdFrameHeader(bytes: Buffer): ZstdFrameHeader | undefined {
  const descriptor = bytes[0];
  if (descriptor === undefined) return undefined;
  const { singleSegment, didBytes, fcsBytes, size } = zstdHeaderLayout(descriptor);
  if (bytes.length < size) return undefined;
  let at = singleSegment ? 1 : 2;
  const dictionaryId = didBytes ? bytes.readUIntLE(at, didBytes) : 0;
  at += didBytes;
  let contentSize: number | undefined;
  if (fcsBytes === 8) contentSize = Number(bytes.readBigUInt64LE(at));
  else if (fcsBytes) contentSize = bytes.readUIntLE(at, fcsBytes) + (fcsBytes === 2 ? 256 : 0);
  let windowSize = contentSize ?? 0;
  if (!singleSegment) {
    const windowBase = 2 ** (10 + ((bytes[1] as number) >> 3));
    windowSize = windowBase + (windowBase / 8) * ((bytes[1] as number) & 0x07);
  }
  return {
    size,
    checksum: (descriptor & 0x04) !== 0,
    dictionaryId,
    ...(contentSize !== undefined ? { contentSize } : {}),
    windowSize,
  };
}

/** A run of a zstd stream's bytes inside one frame (ZstdFrames.push). */
export interface ZstdSegment {
  /** The frame's ordinal, from 1; skippable frames are not counted and not returned. */
  frame: number;
  bytes: Buffer;
  /** The segment ends the frame (its last block and, when flagged, its content checksum). */
  last: boolean;
}

/**
 * Walks the frame structure of a zstd stream as it arrives, without decompressing (RFC 8878,
 * "Zstandard Compression Data Format", section 3.1): each frame's magic number (28 B5 2F FD), its
 * Frame_Header (section 3.1.1.1, zstdFrameHeader: the descriptor's reserved bit 0; window, dictionary
 * id and content size fields sized by its flags; a Dictionary_ID other than 0 and a window over
 * ZSTD_WINDOW_LIMIT_BYTES refused, as libzstd refuses them without the dictionary or `--long`), its
 * blocks (section 3.1.1.2: a 3-byte little-endian header with Last_Block, Block_Type and
 * Block_Size; Raw and Compressed blocks carry Block_Size bytes, RLE one; Block_Type 3 is reserved;
 * Block_Size at most the smaller of the window and 128 KiB, an RLE block's too), and the 4-byte
 * Content_Checksum when flagged.
 * Skippable frames (magic 0x184D2A50-5F and a 4-byte size, section 3.1.2) are stepped over.
 *
 * Node.js 22's node:zlib zstd stream, which decompresses the body, misses three faults by itself
 * (checked on 22.23): a stream cut anywhere after the first frame's header ends without an error,
 * bytes after the first frame (a second frame, a log line) are ignored unread, and a cut
 * Content_Checksum passes. This walker finds the first and the third (`end`) and refuses anything
 * after a frame that is not a frame (`push`); the decoder is fed one frame at a time, so every frame
 * is decompressed and its checksum checked.
 */
export class ZstdFrames {
  /** Bytes of a field not yet complete (at most 18: the longest frame header). */
  private pending: Buffer = Buffer.alloc(0);
  /** What the next bytes are. */
  private state: 'magic' | 'skippable-size' | 'skip' | 'header' | 'block-header' | 'block' | 'checksum' =
    'magic';
  /** Bytes the current state still needs (header: all of it, once the descriptor is known). */
  private need = 4;
  private checksum = false;
  private frames = 0;
  private offset = 0;

  /**
   * The bytes of `chunk` that belong to zstd frames, split where frames end.
   * @throws FormatProblem on a magic number that is neither a zstd nor a skippable frame's, a
   *   reserved descriptor bit, a dictionary, a window over ZSTD_WINDOW_LIMIT_BYTES, a reserved block
   *   type or a block over its frame's Block_Maximum_Size
   */
  push(chunk: Buffer): ZstdSegment[] {
    const segments: ZstdSegment[] = [];
    let start = 0; // where the current frame's bytes began in `chunk`
    let i = 0;
    const emit = (end: number, last: boolean) => {
      if (this.frames > 0 && (end > start || last))
        segments.push({ frame: this.frames, bytes: chunk.subarray(start, end), last });
      start = end;
    };
    while (i < chunk.length) {
      if (this.state === 'skip' || this.state === 'block' || this.state === 'checksum') {
        const n = Math.min(this.need, chunk.length - i);
        i += n;
        this.offset += n;
        this.need -= n;
        if (this.need > 0) break;
        if (this.state === 'skip') {
          this.state = 'magic';
          this.need = 4;
          start = i;
        } else if (this.state === 'checksum') this.endFrame(i, emit);
        else this.afterBlock(i, emit);
        continue;
      }
      // A fixed-size field: gather it (it may span chunks).
      const n = Math.min(this.need - this.pending.length, chunk.length - i);
      this.pending = Buffer.concat([this.pending, chunk.subarray(i, i + n)]);
      i += n;
      this.offset += n;
      if (this.pending.length < this.need) break;
      const field = this.pending;
      this.pending = Buffer.alloc(0);
      this.field(field, i, emit, (magic) => {
        // The magic may have begun in an earlier chunk: it is handed on whole, the frame's first bytes.
        segments.push({ frame: this.frames, bytes: Buffer.from(magic), last: false });
        start = i;
      });
    }
    if (this.state !== 'magic' && this.state !== 'skippable-size' && this.state !== 'skip') emit(i, false);
    return segments;
  }

  /** After the last byte: undefined when the stream ended between frames, else what is missing. */
  end(): string | undefined {
    if (this.state === 'magic' && this.pending.length === 0) {
      return this.frames > 0 ? undefined : 'its zstd body holds no frame';
    }
    return `its zstd body ends early, inside ${this.state === 'magic' || this.state === 'skippable-size' || this.state === 'skip' ? 'a frame' : `frame ${this.frames}`} (${this.state}), after ${this.offset} compressed bytes`;
  }

  private lastBlock = false;
  /** Block_Maximum_Size of the current frame (bytes). */
  private blockMax = ZSTD_BLOCK_MAX_BYTES;

  private field(
    field: Buffer,
    i: number,
    emit: (end: number, last: boolean) => void,
    frameStart: (magic: Buffer) => void,
  ) {
    switch (this.state) {
      case 'magic': {
        const magic = field.readUInt32LE(0);
        if (magic === 0xfd2fb528) {
          this.frames += 1;
          frameStart(field);
          // The descriptor, then the rest of the header (the magic is kept in front, already handed on).
          this.state = 'header';
          this.need = 5;
          this.pending = field;
          return;
        }
        if ((magic & 0xfffffff0) === 0x184d2a50) {
          this.state = 'skippable-size';
          this.need = 4;
          return;
        }
        throw new FormatProblem(
          `its zstd body is corrupt: it holds bytes that are not a zstd frame at compressed offset ${this.offset - 4}: ${shown(field)}`,
        );
      }
      case 'skippable-size':
        this.state = 'skip';
        this.need = field.readUInt32LE(0);
        if (this.need === 0) {
          this.state = 'magic';
          this.need = 4;
        }
        return;
      case 'header': {
        if (field.length === 5 && (field[4] as number) & 0x08)
          throw new FormatProblem(
            `its zstd body is corrupt: frame ${this.frames} sets the reserved bit of its header descriptor (compressed offset ${this.offset - 1})`,
          );
        const header = zstdFrameHeader(field.subarray(4));
        if (!header) {
          // Gather the rest of the header after the 5 bytes already held (its size is now known).
          this.pending = field;
          this.need = 4 + zstdHeaderLayout(field[4] as number).size;
          return;
        }
        // What libzstd refuses (the zstd CLI, node:zlib, zstd-jni in neo4j-admin) is refused here,
        // whichever decoder runs: fzstd would decode these.
        if (header.dictionaryId !== 0)
          throw new FormatProblem(
            `its zstd frame ${this.frames} needs dictionary ${header.dictionaryId} to decode, which a Neo4j dump does not use and no decoder here has`,
          );
        if (header.windowSize > ZSTD_WINDOW_LIMIT_BYTES)
          throw new FormatProblem(
            `its zstd frame ${this.frames} asks for a window of ${header.windowSize} bytes, over the ${ZSTD_WINDOW_LIMIT_BYTES} bytes zstd decodes by default (neo4j-admin's dumps use 2 MiB)`,
          );
        this.checksum = header.checksum;
        this.blockMax = Math.min(header.windowSize, ZSTD_BLOCK_MAX_BYTES);
        this.state = 'block-header';
        this.need = 3;
        return;
      }
      case 'block-header': {
        const header = field.readUIntLE(0, 3);
        this.lastBlock = (header & 1) === 1;
        const type = (header >> 1) & 3;
        const size = header >> 3;
        if (type === 3)
          throw new FormatProblem(
            `its zstd body is corrupt: frame ${this.frames} has a block of the reserved type 3 at compressed offset ${this.offset - 3}`,
          );
        // Block_Maximum_Size: the smaller of the window and 128 KiB; an RLE block's Block_Size is the
        // size it decodes to, held to the same bound (section 3.1.1.2.4).
        if (size > this.blockMax)
          throw new FormatProblem(
            `its zstd body is corrupt: frame ${this.frames} has a block of ${size} bytes at compressed offset ${this.offset - 3}, over the ${this.blockMax} bytes its frame allows (the smaller of its window and 128 KiB)`,
          );
        this.need = type === 1 ? 1 : size;
        this.state = 'block';
        if (this.need === 0) this.afterBlock(i, emit);
        return;
      }
    }
  }

  private afterBlock(i: number, emit: (end: number, last: boolean) => void) {
    if (!this.lastBlock) {
      this.state = 'block-header';
      this.need = 3;
    } else if (this.checksum) {
      this.state = 'checksum';
      this.need = 4;
    } else this.endFrame(i, emit);
  }

  private endFrame(i: number, emit: (end: number, last: boolean) => void) {
    emit(i, true);
    this.state = 'magic';
    this.need = 4;
  }
}

/**
 * zstd body: the frames walked as they arrive (ZstdFrames), each frame decompressed by a decoder of
 * its own (`frameDecoder`: a node:zlib zstd stream, which checks the frame's content checksum, or
 * fzstdDecoder), so a cut, a second frame or anything appended is found, which node:zlib's stream
 * alone does not, and each frame's checksum is held to its own content.
 */
function framedZstdDecoder(frameDecoder: () => BodyDecoder): BodyDecoder {
  const frames = new ZstdFrames();
  let current: { frame: number; decoder: BodyDecoder } | undefined;
  let failed: string | undefined;
  return {
    async write(chunk) {
      if (failed) throw new FormatProblem(failed);
      let segments: ZstdSegment[];
      try {
        segments = frames.push(chunk);
      } catch (err) {
        if (err instanceof FormatProblem) failed = err.problem;
        throw err;
      }
      for (const segment of segments) {
        if (current?.frame !== segment.frame) {
          current?.decoder.abort();
          current = {
            frame: segment.frame,
            decoder: frameDecoder(),
          };
        }
        try {
          if (segment.bytes.length > 0) await current.decoder.write(segment.bytes);
        } catch (err) {
          if (!(err instanceof FormatProblem)) throw err;
          // Named by its frame as at the frame's end, whichever write finds it.
          failed = `frame ${segment.frame}: ${err.problem}`;
          throw new FormatProblem(failed);
        }
        if (segment.last) {
          const problem = await current.decoder.end();
          current = undefined;
          if (problem) {
            failed = `frame ${segment.frame}: ${problem}`;
            throw new FormatProblem(failed);
          }
        }
      }
    },
    async end() {
      if (failed) return failed;
      const problem = frames.end();
      current?.decoder.abort();
      current = undefined;
      return problem;
    },
    abort() {
      current?.decoder.abort();
    },
  };
}

function bodyDecoder(codec: string): BodyDecoder {
  if (codec === 'gzip') return zlibDecoder(createGunzip({ chunkSize: ZLIB_CHUNK_BYTES }), codec);
  // Node.js 22.15+ has libzstd in node:zlib (it checks the content checksum itself).
  const native = (zlib as unknown as { createZstdDecompress?: (o: zlib.ZlibOptions) => Transform })
    .createZstdDecompress;
  if (native) return framedZstdDecoder(() => zlibDecoder(native({ chunkSize: ZLIB_CHUNK_BYTES }), codec));
  return framedZstdDecoder(fzstdDecoder);
}

/**
 * The Neo4j dump check, fed the bytes as they stream: the header (see above), then the whole
 * compressed body decompressed (and discarded) in the same pass, with bounded memory (the codec's
 * window), so a dump whose body was damaged (bytes overwritten, truncated, a header followed by
 * text) is found; `neo4j-admin database load` of such a dump fails and can leave the store unusable.
 */
export function neo4jDumpCheck(): FormatCheck {
  const format = 'neo4j-dump';
  let head = Buffer.alloc(0);
  let decided: string | null | undefined; // problem, null = fine, undefined = not yet known
  let body: BodyDecoder | undefined;
  return {
    format,
    async write(chunk) {
      if (decided) throw new FormatProblem(decided);
      if (decided === undefined) {
        const need = 8 - head.length;
        head = Buffer.concat([head, chunk.subarray(0, need)]);
        if (head.length < 8) return;
        decided = neo4jDumpHeaderProblem(head) ?? null;
        if (decided) throw new FormatProblem(decided);
        const codec = NEO4J_DUMP_HEADERS.find(
          (h) => head.subarray(0, 4).toString('latin1') === h.magic,
        )?.codec;
        body = bodyDecoder(codec ?? 'gzip');
        await body.write(head.subarray(4));
        chunk = chunk.subarray(need);
      }
      if (body && chunk.length > 0) {
        try {
          await body.write(chunk);
        } catch (err) {
          if (err instanceof FormatProblem) decided = err.problem;
          throw err;
        }
      }
    },
    async end() {
      if (decided === undefined)
        decided = `is ${head.length} bytes long, shorter than a Neo4j dump header: ${shown(head)}`;
      if (decided === null && body) decided = (await body.end()) ?? null;
      return decided ? { status: 'problem', format, problem: decided } : { status: 'ok', format };
    },
    abort() {
      body?.abort();
    },
  };
}

/**
 * Reads a PostgreSQL custom-format archive with `pg_restore --file=/dev/null` (see above). `pgRestore`
 * is the executable; if it cannot be started the verdict is `unchecked`, as is an archive newer than
 * that pg_restore understands ("unsupported version ... in file header"): no tool, no verdict.
 */
export function pgCustomDumpCheck(pgRestore: string): FormatCheck {
  const format = 'pg-custom';
  const tool = runTool(pgRestore, ['--file=/dev/null'], {
    stdin: 'pipe',
    stdout: 'ignore',
    name: 'pg_restore',
  });
  let exited: { error?: unknown } | undefined;
  const settled = tool.done.then(
    () => {
      exited = {};
    },
    (error: unknown) => {
      exited = { error };
    },
  );
  // pg_restore failing closes its end of the pipe: EPIPE here; its exit status tells why.
  tool.stdin.on('error', () => undefined);
  const verdict = (): FormatVerdict => {
    const error = exited?.error;
    if (!error) return { status: 'ok', format };
    if (error instanceof ToolFailedError && error.exit.code === null && !error.exit.signal)
      return { status: 'unchecked', format, reason: `pg_restore could not be started (${error.stderrTail})` };
    const text = error instanceof ToolFailedError ? error.stderrTail : String(error);
    if (/unsupported version .* in file header/i.test(text))
      return { status: 'unchecked', format, reason: `pg_restore here is older than the dump: ${text}` };
    return { status: 'problem', format, problem: `pg_restore cannot read it: ${text || 'no message'}` };
  };
  return {
    format,
    async write(chunk) {
      const open = () => !exited && !tool.stdin.destroyed && !tool.stdin.writableEnded;
      if (open() && !tool.stdin.write(chunk)) {
        // A broken pipe rejects `once` with EPIPE: the tool is exiting, and its status says why.
        await Promise.race([once(tool.stdin, 'drain').catch(() => undefined), settled]);
      }
      if (!exited && tool.stdin.destroyed) await settled;
      if (exited) {
        const v = verdict();
        if (v.status === 'problem') throw new FormatProblem(v.problem);
        // Exited early without a problem (or unchecked): nothing more to feed.
      }
    },
    async end() {
      if (!exited) tool.stdin.end();
      await settled;
      return verdict();
    },
    abort() {
      if (!exited) tool.child.kill('SIGTERM');
    },
  };
}

/** The check for a backup file, by its path; undefined for files without a known format (artifacts, Enterprise backups). */
export function formatCheckFor(path: string, tools: { pgRestore: string }): FormatCheck | undefined {
  if (path === PREFECT_DUMP) return pgCustomDumpCheck(tools.pgRestore);
  if (path.startsWith(DATABASE_DIR) && path.endsWith('.dump')) return neo4jDumpCheck();
  return undefined;
}

/**
 * How far (bytes) the check may lag behind the bytes passed on. The check runs beside the stream
 * rather than in its path: awaiting each chunk's check before passing it on made the producing tool
 * wait on every decompression (a 1 GiB Neo4j store's dump took 2.3 times its raw time streamed to S3,
 * README "Benchmarks"). The chunks in flight are held until checked: at most this much more memory.
 */
export const CHECK_LAG_BYTES = 16 * 1024 * 1024;

/**
 * Passes `source` through unchanged while feeding `check`, in order, beside it (at most
 * CHECK_LAG_BYTES behind); `verdict()` is the outcome once known. The returned stream errors with a
 * FormatProblem as soon as the bytes are known to be wrong (at most CHECK_LAG_BYTES later than they
 * passed), and at its end, which waits for the check to catch up, when the verdict is a problem: an
 * upload reading it is aborted and never completed.
 */
export function checkedStream(
  source: AsyncIterable<Buffer>,
  check: FormatCheck,
  /**
   * The producing tool's exit: awaited once its output has ended and before the verdict, so a tool
   * that failed (killed mid-dump: its output merely truncated) is reported as itself, not as a format problem.
   */
  producerDone?: Promise<void>,
): { stream: AsyncGenerator<Buffer>; verdict: () => FormatVerdict | undefined } {
  let result: FormatVerdict | undefined;
  async function* pass() {
    let finished = false;
    let failure: unknown;
    let lag = 0;
    let checked: Promise<void> = Promise.resolve();
    const caughtUp = async () => {
      await checked;
      if (failure !== undefined) throw failure;
    };
    try {
      for await (const chunk of source) {
        if (failure !== undefined) throw failure;
        lag += chunk.length;
        checked = checked.then(async () => {
          try {
            if (failure === undefined) await check.write(chunk);
          } catch (err) {
            failure = err;
          } finally {
            lag -= chunk.length;
          }
        });
        if (lag > CHECK_LAG_BYTES) await caughtUp();
        yield chunk;
      }
      await caughtUp();
      await producerDone;
      result = await check.end();
      finished = true;
    } catch (err) {
      if (err instanceof FormatProblem)
        result = { status: 'problem', format: check.format, problem: err.problem };
      throw err;
    } finally {
      // The reader stopped early (an S3 failure) or the source failed: stop the checking tool too.
      if (!finished) check.abort();
    }
    if (result.status === 'problem') throw new FormatProblem(result.problem);
  }
  return { stream: pass(), verdict: () => result };
}

const FORMAT_NAMES: Record<string, string> = {
  'pg-custom': 'PostgreSQL custom-format archive',
  'neo4j-dump': 'Neo4j dump',
};

/**
 * The error for a dump whose check did not pass: a problem, or (at backup time, where the runner
 * image has the tools) a check that could not run. Undefined for `ok` or no verdict yet.
 */
export function dumpFormatError(
  path: string,
  verdict: FormatVerdict | undefined,
  what = 'its upload was aborted; no manifest will be written',
): DumpFormatError | undefined {
  if (!verdict || verdict.status === 'ok') return undefined;
  const name = FORMAT_NAMES[verdict.format] ?? verdict.format;
  return verdict.status === 'problem'
    ? new DumpFormatError(`${path} is not a valid ${name}: ${verdict.problem}; ${what}`)
    : new DumpFormatError(`${path}: the ${name} format could not be checked: ${verdict.reason}; ${what}`);
}
