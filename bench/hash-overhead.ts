/**
 * What hashing costs in a streaming pass: every backup object's SHA-256 is computed while it
 * streams (no second read), so the hash must keep up with the data. Compares, on one generated
 * file read from the page cache, (a) a plain streamed read with (b) the same read through SHA-256.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface HashOverheadResult {
  sizeMiB: number;
  plainMs: number;
  hashedMs: number;
  ratio: number;
}

async function timeRead(path: string, hash: boolean): Promise<number> {
  const sha = createHash('sha256');
  const sink = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, done) {
      if (hash) sha.update(chunk);
      done();
    },
  });
  const t0 = process.hrtime.bigint();
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), sink);
  if (hash) sha.digest('hex');
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export async function hashOverhead(sizeMiB: number, rounds = 3): Promise<HashOverheadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-hash-'));
  const file = join(dir, 'data.bin');
  try {
    const chunk = randomBytes(1 << 20);
    writeFileSync(file, Buffer.concat(Array.from({ length: sizeMiB }, () => chunk)));
    await timeRead(file, false); // warm the page cache
    const plain: number[] = [];
    const hashed: number[] = [];
    // Interleaved rounds, best of each, so both sides see the same machine state.
    for (let i = 0; i < rounds; i++) {
      plain.push(await timeRead(file, false));
      hashed.push(await timeRead(file, true));
    }
    const plainMs = Math.min(...plain);
    const hashedMs = Math.min(...hashed);
    return { sizeMiB, plainMs, hashedMs, ratio: hashedMs / plainMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
