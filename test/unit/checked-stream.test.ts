/**
 * checkedStream (core/backup/formats.ts): the format check runs beside the stream, at most
 * CHECK_LAG_BYTES behind, instead of in its path (issue 19: a dump streamed to S3 waited on every
 * chunk's decompression), and still never lets a stream end well whose bytes are not the format.
 */
import { describe, expect, it } from 'vitest';
import {
  CHECK_LAG_BYTES,
  checkedStream,
  type FormatCheck,
  FormatProblem,
  type FormatVerdict,
} from '../../core/backup/formats.js';

/** A check whose writes wait until `release()`; it records what it saw, and fails on a chunk of "bad". */
function gatedCheck() {
  const seen: string[] = [];
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let aborted = false;
  const check: FormatCheck = {
    format: 'test',
    async write(chunk) {
      await gate;
      const text = chunk.toString();
      if (text === 'bad') throw new FormatProblem(`chunk ${seen.length} is bad`);
      seen.push(text);
    },
    async end(): Promise<FormatVerdict> {
      return { status: 'ok', format: 'test' };
    },
    abort() {
      aborted = true;
    },
  };
  return { check, seen, release: () => open(), aborted: () => aborted };
}

async function* chunks(...texts: string[]) {
  for (const t of texts) yield Buffer.from(t);
}

describe('checkedStream', () => {
  it('passes chunks on before the check has read them (the producer does not wait on the check)', async () => {
    const { check, seen, release } = gatedCheck();
    const { stream, verdict } = checkedStream(chunks('a', 'b', 'c'), check);
    const passed: string[] = [];
    for (let i = 0; i < 3; i++) {
      const next = await stream.next();
      passed.push(String(next.value));
    }
    // All three passed on while the check still waits on its first.
    expect(passed).toEqual(['a', 'b', 'c']);
    expect(seen).toEqual([]);
    release();
    // The end waits for the check to catch up, then gives its verdict.
    expect((await stream.next()).done).toBe(true);
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(verdict()).toEqual({ status: 'ok', format: 'test' });
  });

  it('a problem found behind the stream still fails it, at the latest at its end, and the verdict names it', async () => {
    const { check, release, aborted } = gatedCheck();
    const { stream, verdict } = checkedStream(chunks('a', 'bad', 'c'), check);
    release();
    const read = async () => {
      for await (const _ of stream) {
        // passed on
      }
    };
    await expect(read()).rejects.toBeInstanceOf(FormatProblem);
    expect(verdict()).toEqual({ status: 'problem', format: 'test', problem: 'chunk 1 is bad' });
    expect(aborted()).toBe(true);
  });

  it(`waits for the check once it lags more than CHECK_LAG_BYTES (${CHECK_LAG_BYTES} bytes) behind`, async () => {
    const { check, release } = gatedCheck();
    const big = Buffer.alloc(CHECK_LAG_BYTES / 2 + 1);
    async function* source() {
      for (let i = 0; i < 4; i++) yield big;
    }
    const { stream } = checkedStream(source(), check);
    expect((await stream.next()).done).toBe(false);
    // The second chunk puts the lag past the bound: it is not passed on until the check catches up.
    let second = false;
    const pending = stream.next().then(() => {
      second = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(second).toBe(false);
    release();
    await pending;
    expect(second).toBe(true);
    for await (const _ of stream) {
      // the rest
    }
  });
});
