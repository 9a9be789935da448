/**
 * The seal's re-tagging stops in time to be undone (core/backup/catalog.ts tagObjects), from the
 * issue 16 review: a run whose rate halves part-way was projected with the whole run's average, so
 * it went on tagging long after S3 slowed down, and the undo of all it had tagged, at the slower
 * rate, no longer fitted the time left. The clock here is virtual: each request advances it by the
 * time S3 takes to answer at that point of the run.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { RECENT_ANSWERS, tagObjects } from '../../core/backup/catalog.js';

/** An S3 client whose PutObjectTagging takes `msFor(n)` virtual ms for the n-th request. */
function slowingS3(msFor: (n: number) => number) {
  const clock = { t: 0 };
  let n = 0;
  const s3 = {
    send: async () => {
      clock.t += msFor(n++);
      return {};
    },
  } as unknown as S3Client;
  return { s3, now: () => clock.t };
}

const objects = Array.from({ length: 10_000 }, (_, i) => ({ key: `t/b/f${i}`, versionId: `v${i}` }));

describe('tagging that S3 slows down part-way', () => {
  it('stops within a few answers of the slow-down, when what it must undo is still small', async () => {
    // 1 ms an object for the first 2,000, then 10 ms: the rest cannot end by the deadline.
    const { s3, now } = slowingS3((n) => (n < 2000 ? 1 : 10));
    const run = await tagObjects(s3, 'b', objects, 'monthly', { concurrency: 1, deadline: 20_000, now });
    expect(run.stopped).toBe('projected');
    // The whole run's average would have gone on to about 2,260 objects (22.6 s to undo at 10 ms,
    // with about 15 s left); the recent rate sees the change within its window.
    expect(run.tagged).toBeLessThanOrEqual(2000 + 2 * RECENT_ANSWERS);
    // What it tagged can be undone at the slow rate before the deadline's end of time.
    expect(now() + run.tagged * 10).toBeLessThan(20_000 / 0.9);
  });

  it('goes on to the end when the rate holds, however many it has tagged', async () => {
    const { s3, now } = slowingS3(() => 1);
    const run = await tagObjects(s3, 'b', objects, 'monthly', { concurrency: 1, deadline: 20_000, now });
    expect(run).toMatchObject({ tagged: 10_000, failed: 0 });
    expect(run.stopped).toBeUndefined();
  });

  it('an undo (stopWhenBehind false) tags as many as the deadline allows', async () => {
    const { s3, now } = slowingS3((n) => (n < 2000 ? 1 : 10));
    const run = await tagObjects(s3, 'b', objects, 'pending', {
      concurrency: 1,
      deadline: 5_000,
      stopWhenBehind: false,
      now,
    });
    expect(run.stopped).toBe('deadline');
    expect(run.tagged).toBe(2000 + 300);
  });
});
