import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalAws, type RunTaskRequest, runBackupLocally } from '../../cli/local/backup.js';
import { provisionLocalAws } from '../../cli/local/harness-target.js';
import type { ExecutionEvent } from '../../cli/local/state-machine.js';
import { synthesizeBackup } from '../../cli/local/synth.js';
import { resultKey } from '../../core/backup/layout.js';
import { readManifest } from '../../core/backup/manifest.js';
import type { ArtifactsResult } from '../../core/backup/results.js';
import { parseDeploymentConfig } from '../../core/config/load.js';
import { MAX_TARGETS } from '../../core/config/schema.js';
import { putJson } from '../../core/s3/objects.js';
import { type S3Server, startS3 } from '../../harness/index.js';

// The largest fleet one deployment takes (one stack's 500 resources: three per target).
const TARGETS = MAX_TARGETS;
const LIMIT = 256 * 1024; // Step Functions' limit on a state's input or output

// The largest fleet (MAX_TARGETS) through the synthesized state machine: every state's payload must stay small.
// The ECS states are FAKED here, and only here: hundreds of runner processes would prove nothing more about
// payload sizes. The fake writes what a runner of the artifacts component writes (an empty storage).
describe('a backup of the largest fleet (MAX_TARGETS targets), run locally', () => {
  let aws: S3Server;
  let local: LocalAws;

  beforeAll(async () => {
    aws = await startS3();
    local = await provisionLocalAws(aws, 'infrahub-backups-fleet', []);
  }, 120_000);

  afterAll(async () => {
    await aws?.stop();
  });

  it('backs up every target independently, each state payload far below 256 KiB', async () => {
    const target = (i: number) => ({
      name: `infrahub-site-${String(i).padStart(3, '0')}`,
      neo4j: {
        host: `neo4j.site-${i}.internal`,
        edition: 'enterprise',
        licence: 'commercial',
        version: '5.26.26',
        credentialsSecret: `site-${i}/neo4j`,
      },
      postgres: { host: `prefect.site-${i}.internal`, majorVersion: 18, credentialsSecret: `site-${i}/pg` },
      infrahub: { address: `https://infrahub.site-${i}.example.com`, tokenSecret: `site-${i}/token` },
      artifacts: { type: 's3', bucket: `infrahub-site-${i}-artifacts` },
    });
    const config = parseDeploymentConfig(
      {
        name: 'fleet',
        region: 'us-east-1',
        network: { vpcId: 'vpc-00000000', subnetIds: ['subnet-00000000'], availabilityZones: ['us-east-1a'] },
        targets: Array.from({ length: TARGETS }, (_, i) => target(i)),
        retention: { daily: 7, weekly: 4, monthly: 12 },
        maxConcurrency: 40,
      },
      'fleet',
    );
    const synthesized = synthesizeBackup(config);
    const faked: RunTaskRequest[] = [];
    const runTask = async (request: RunTaskRequest) => {
      faked.push(request);
      const backupId = request.environment.BACKUP_ID ?? '';
      const now = new Date().toISOString();
      const result: ArtifactsResult = {
        target: request.target,
        backupId,
        component: 'artifacts',
        startedAt: now,
        finishedAt: now,
        source: { type: 's3', bucket: `${request.target}-artifacts`, prefix: '' },
        files: [],
      };
      await putJson(local.s3, local.bucket, resultKey(request.target, backupId, 'artifacts'), result);
    };
    let largest = { bytes: 0, where: '' };
    const measure = (event: ExecutionEvent) => {
      const state = event.state as { name: string; input?: unknown; output?: unknown } | undefined;
      for (const [kind, value] of [
        ['input', state?.input],
        ['output', state?.output ?? event.output],
      ] as const) {
        if (value === undefined) continue;
        const bytes = Buffer.byteLength(JSON.stringify(value));
        if (bytes > largest.bytes) largest = { bytes, where: `${state?.name ?? event.type} ${kind}` };
      }
    };

    const result = await runBackupLocally(
      { components: ['artifacts'], force: true },
      {
        config,
        aws: local,
        runtime: () => ({ env: {} }),
        synthesized,
        runTask,
        retryIntervalMs: 0,
        onEvent: measure,
      },
    );

    expect(result.status, result.cause).toBe('SUCCEEDED');
    const report = result.output as { succeeded: string[]; failed: unknown[] };
    expect(report.succeeded).toHaveLength(TARGETS);
    expect(new Set(faked.map((r) => r.target)).size).toBe(TARGETS);
    expect(faked.every((r) => r.subcommand === 'backup-artifacts')).toBe(true);
    console.info(
      `${TARGETS}-target fleet: largest state payload ${(largest.bytes / 1024).toFixed(1)} KiB (${largest.where}); limit 256 KiB`,
    );
    expect(largest.bytes).toBeGreaterThan(TARGETS * 50); // the Map's result really lists every target
    expect(largest.bytes).toBeLessThan(LIMIT / 2);

    // One target failing neither fails nor rolls back the others; the result names each.
    const five = report.succeeded.slice(0, 5);
    const broken = five[2] ?? '';
    const partial = await runBackupLocally(
      { targets: five, components: ['artifacts'], force: true },
      {
        config,
        aws: local,
        runtime: () => ({ env: {} }),
        synthesized,
        retryIntervalMs: 0,
        runTask: async (request) => {
          if (request.target === broken)
            throw Object.assign(new Error('storage unreadable'), { exitCode: 6 });
          await runTask(request);
        },
      },
    );
    expect(partial.status).toBe('FAILED');
    expect(partial.cause).toMatch(
      new RegExp(
        `1 of 5 target\\(s\\) failed, 4 backed up\\n- ${broken}: Backup of ${broken} failed at CopyArtifacts: runner backup-artifacts stopped with exit code 6`,
      ),
    );
    const reportState = partial.events.find(
      (e) => e.type === 'StateExited' && (e.state as { name: string }).name === 'Report',
    )?.state as { output: { report: { succeeded: string[] } } };
    expect(reportState.output.report.succeeded).toEqual(five.filter((t) => t !== broken));
    const backupId = /^(infrahub_backup_\d{8}_\d{6}):/.exec(partial.cause ?? '')?.[1] ?? '';
    for (const t of five) {
      const manifest = await readManifest(local.s3, local.bucket, t, backupId);
      expect(manifest === undefined, t).toBe(t === broken);
    }
  }, 600_000);
});
