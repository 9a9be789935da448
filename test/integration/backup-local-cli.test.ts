import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../core/backup/manifest.js';
import {
  createVersionedBucket,
  type PostgresServer,
  repoRoot,
  type S3Server,
  seedPrefect,
  startPostgres,
  startS3,
} from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';

const tsx = join(repoRoot, 'node_modules', '.bin', 'tsx');

function cli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(tsx, [join(repoRoot, 'cli', 'backup-local.ts'), ...args], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.once('close', (code) => resolve({ code, out, err }));
  });
}

// `npm run backup:local`: the synthesized state machine, run locally from the command line against a
// configuration file and a given AWS-compatible endpoint (moto here).
describe('backup:local command', () => {
  let postgres: PostgresServer;
  let aws: S3Server;
  let dir: string;
  let configFile: string;

  beforeAll(async () => {
    [postgres, aws] = await Promise.all([startPostgres(), startS3()]);
    await seedPrefect(postgres, { flowRuns: 20 });
    await createVersionedBucket(aws.client(), 'backups');
    const secrets = aws.secretsManager();
    await secrets.send(
      new CreateSecretCommand({
        Name: 'lab/pg',
        SecretString: JSON.stringify({ username: postgres.user, password: postgres.password }),
      }),
    );
    await secrets.send(
      new CreateSecretCommand({
        Name: 'lab/neo4j',
        SecretString: JSON.stringify({ username: 'neo4j', password: 'x' }),
      }),
    );
    dir = mkdtempSync(join(tmpdir(), 'backup-local-'));
    configFile = join(dir, 'config.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        region: 'us-east-1',
        network: { vpcId: 'vpc-00000000', subnetIds: ['subnet-00000000'], availabilityZones: ['us-east-1a'] },
        targets: [
          {
            name: 'infrahub-lab',
            neo4j: {
              host: '127.0.0.1',
              edition: 'community',
              version: '5.26.26',
              credentialsSecret: 'lab/neo4j',
              // Plain Bolt on loopback, said explicitly (neo4j.tls.mode defaults to verify-full).
              tls: { mode: 'disable' },
              // Nothing listens for Neo4j here: fail within seconds rather than wait the default 300 s for it to start.
              readyTimeoutSeconds: 5,
              dbms: { cluster: 'local', service: 'neo4j', dataEfsFileSystemId: 'fs-00000000' },
            },
            postgres: {
              host: '127.0.0.1',
              port: postgres.port,
              majorVersion: 15,
              credentialsSecret: 'lab/pg',
              // The harness's PostgreSQL listens on loopback without TLS; the default (verify-full
              // against the RDS bundle, which exists only in the runner image) is refused here.
              tls: { mode: 'disable' },
            },
            infrahub: { address: 'http://127.0.0.1:9', tokenSecret: 'lab/token' },
            artifacts: { type: 'path', path: dir, efsFileSystemId: 'fs-00000000' },
          },
        ],
        retention: { daily: 7, weekly: 4, monthly: 12 },
      }),
    );
  }, scaled(240_000));

  afterAll(async () => {
    await Promise.allSettled([postgres?.stop(), aws?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const env = () => ({
    ...aws.env(),
    PG_BINDIR: postgres.binDir,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });

  /** The command on the test's configuration, endpoint and bucket. */
  const backupLocal = (input: unknown, extraEnv: Record<string, string> = {}, extraArgs: string[] = []) =>
    cli(
      [
        '--config',
        configFile,
        '--endpoint',
        aws.endpoint,
        '--bucket',
        'backups',
        '--input',
        JSON.stringify(input),
        ...extraArgs,
      ],
      { ...env(), ...extraEnv },
    );

  it(
    'backs up the configured target into the bucket at the endpoint and prints the report',
    async () => {
      // POWERTOOLS_LOG_LEVEL sets the level of the Lambda steps' log lines (default WARN, issue 17, item 4).
      const run = await backupLocal(
        { components: ['task-manager-db'], force: true },
        { POWERTOOLS_LOG_LEVEL: 'INFO' },
      );
      expect(run.code, run.err).toBe(0);
      // Progress on standard error, as the operator CLI prints it; standard output is the report only
      // (issue 17, item 5).
      expect(run.err).toMatch(/s {2}\[infrahub-lab\] DumpPostgres\n/);
      // Standard error holds progress lines and whole JSON log lines, never one written into another.
      const lines = run.err.split('\n').filter((l) => l !== '');
      for (const line of lines)
        if (!/^ +\d+\.\d s {2}(\[[\w-]+\] )?\w+( failed: [\w.]+| retry \d of \d)?$/.test(line))
          expect(() => JSON.parse(line), line).not.toThrow();
      expect(
        lines.some((l) => /^\{"level":"INFO",.*"service":"infrahub-backup-local"/.test(l)),
        run.err,
      ).toBe(true);
      const report = JSON.parse(run.out) as {
        backupId: string;
        succeeded: string[];
      };
      expect(report.succeeded).toEqual(['infrahub-lab']);
      const manifest = await readManifest(aws.client(), 'backups', 'infrahub-lab', report.backupId);
      expect(manifest).toMatchObject({ components: ['task-manager-db'], forced: true });
    },
    scaled(180_000),
  );

  it(
    'exits 1 with the failed step and cause when a target fails (here: no Neo4j to count)',
    async () => {
      // The deployed Retry pauses up to 60 s, then up to 120 s, before the two retries of a transient
      // runner error; --retry-interval shortens both (the retries still run).
      const run = await backupLocal(
        { components: ['database'], force: true },
        { NEO4J_ADMIN: '/bin/false' },
        ['--retry-interval', '0.5'],
      );
      expect(run.code).toBe(1);
      // Each failure and each retry is a progress line: no silent minutes while the Retry waits.
      // The target's steps run in a child execution of the fleet: each line names the target.
      const progress = run.err.split('\n').filter((l) => / s {2}\[infrahub-lab\] CountNeo4j/.test(l));
      expect(progress.map((l) => l.replace(/^ +\d+\.\d s {2}\[infrahub-lab\] /, ''))).toEqual([
        'CountNeo4j',
        'CountNeo4j failed: DatabaseUnreachable',
        'CountNeo4j retry 1 of 2',
        'CountNeo4j failed: DatabaseUnreachable',
        'CountNeo4j retry 2 of 2',
        'CountNeo4j failed: DatabaseUnreachable',
      ]);
      // No line for the Fail state that ends the execution: its error is the outcome printed below.
      expect(run.err).not.toMatch(/BackupFailed failed/);
      expect(run.err).toMatch(/backup failed: BackupFailed/);
      // At the default level (WARN) the Lambda steps' INFO lines are not written.
      expect(run.err).not.toMatch(/"level":"INFO"/);
      expect(run.err).toMatch(
        /infrahub-lab: Backup of infrahub-lab failed at CountNeo4j: runner database-counts: DatabaseUnreachable: Neo4j at bolt:\/\/127\.0\.0\.1:7687 was not ready after waiting \d+ s \(bound 5 s/,
      );
    },
    scaled(180_000),
  );

  it(
    'answers an input the state machine refuses (InvalidInput) with exit code 2, as bad arguments',
    async () => {
      for (const input of [{ components: ['graph'] }, null, ['database'], { targets: [] }]) {
        const run = await backupLocal(input);
        expect(run.code, `${JSON.stringify(input)}: ${run.err}`).toBe(2);
        expect(run.err).toMatch(/backup failed: InvalidInput/);
      }
    },
    scaled(300_000),
  );

  it(
    'answers bad arguments with the usage and exit code 2',
    async () => {
      const missing = await cli(['--endpoint', aws.endpoint], env());
      expect(missing.code).toBe(2);
      expect(missing.err).toMatch(/--config is required\n\nusage: npm run backup:local/);
      // Each example's continued line keeps its backslash (a lone one in the template ate the newline).
      for (const machine of ['backup', 'restore', 'drill'])
        expect(missing.err).toMatch(new RegExp(`npm run ${machine}:local -- .*5000 \\\\\n {4}--bucket`));
      const badJson = await cli(
        ['--config', configFile, '--endpoint', aws.endpoint, '--bucket', 'b', '--input', '{'],
        env(),
      );
      expect(badJson.code).toBe(2);
      expect(badJson.err).toMatch(/--input is not valid JSON/);
      for (const bad of ['soon', '3601']) {
        const retry = await cli(
          ['--config', configFile, '--endpoint', aws.endpoint, '--bucket', 'b', '--retry-interval', bad],
          env(),
        );
        expect(retry.code, bad).toBe(2);
        expect(retry.err).toContain(
          `--retry-interval must be a number of seconds from 0 to 3600, not "${bad}"\n\nusage: npm run backup:local`,
        );
      }
      const unknown = await cli(['--nope'], env());
      expect(unknown.code).toBe(2);
      expect(unknown.err).toMatch(/Unknown option '--nope'/);
    },
    scaled(60_000),
  );
});
