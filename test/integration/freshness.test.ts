import { ListMetricsCommand } from '@aws-sdk/client-cloudwatch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshnessStep } from '../../core/backup/freshness.js';
import { backupIdFor, fileKey, manifestKey } from '../../core/backup/layout.js';
import { createLogger } from '../../core/log.js';
import { METRICS_NAMESPACE } from '../../core/metrics.js';
import { putJson } from '../../core/s3/objects.js';
import { createVersionedBucket, type S3Server, startS3 } from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';
import { sampleManifest } from '../helpers/manifest.js';

const logger = createLogger({}, { write: () => undefined });
const bucket = 'freshness';
const now = new Date('2026-11-21T12:00:00Z');
const hoursAgo = (h: number) => new Date(now.getTime() - h * 3_600_000);

// The silence check against moto: S3 listings and heads, CloudWatch PutMetricData.
describe('freshness (age of the last complete backup)', () => {
  let server: S3Server;

  beforeAll(async () => {
    server = await startS3();
    const s3 = server.client();
    await createVersionedBucket(s3, bucket);
    const complete = async (target: string, at: Date) =>
      putJson(s3, bucket, manifestKey(target, backupIdFor(at)), sampleManifest(target, backupIdFor(at)));
    // A manifest that exists but is refused (here: it names a key of another target) is no backup.
    const refused = async (target: string, at: Date) => {
      const id = backupIdFor(at);
      const forged = sampleManifest(target, id);
      for (const file of Object.values(forged.s3 ?? {})) file.key = `other-target/${id}/prefect.dump`;
      await putJson(s3, bucket, manifestKey(target, id), forged);
    };
    const incomplete = async (target: string, at: Date) =>
      putJson(s3, bucket, fileKey(target, backupIdFor(at), 'prefect.dump'), {});
    await complete('fresh', hoursAgo(30));
    await complete('fresh', hoursAgo(2));
    await incomplete('fresh', hoursAgo(1)); // a newer, failed backup does not count, nor hide the older one
    await complete('stale', hoursAgo(50));
    await refused('stale', hoursAgo(1)); // a newer manifest that is refused does not make it fresh
    await incomplete('failing', hoursAgo(3));
  }, scaled(120_000));

  afterAll(async () => {
    await server?.stop();
  });

  it('finds each target’s last complete backup and counts those older than the RPO or missing', async () => {
    const cloudwatch = server.cloudWatch();
    const result = await freshnessStep({
      s3: server.client(),
      bucket,
      targets: ['fresh', 'stale', 'failing', 'never'],
      rpoHours: 26,
      cloudwatch,
      logger,
      now: () => now,
    });
    expect(result.targets).toEqual([
      { target: 'failing', stale: true },
      { target: 'fresh', lastCompleteBackup: backupIdFor(hoursAgo(2)), ageHours: 2, stale: false },
      { target: 'never', stale: true },
      { target: 'stale', lastCompleteBackup: backupIdFor(hoursAgo(50)), ageHours: 50, stale: true },
    ]);
    expect(result.stale).toEqual(['failing', 'never', 'stale']);
    // How old the backups behind the alarm are, in words and as one fleet-wide metric.
    expect(result.oldestAgeHours).toBe(50);
    expect(result.summary).toBe(
      `failing: no complete backup; never: no complete backup; stale: newest complete backup ${backupIdFor(hoursAgo(50))} is 50 h old (RPO 26 h), kept while it is the newest`,
    );
    const listed = await cloudwatch.send(new ListMetricsCommand({ Namespace: METRICS_NAMESPACE }));
    const names = (listed.Metrics ?? []).map(
      (m) => `${m.MetricName}${(m.Dimensions ?? []).map((d) => ` ${d.Name}=${d.Value}`).join('')}`,
    );
    expect(names.sort()).toEqual([
      'LastBackupAgeHours Target=fresh',
      'LastBackupAgeHours Target=stale',
      'OldestBackupAgeHours',
      'TargetsWithoutRecentBackup',
    ]);
  });
});
