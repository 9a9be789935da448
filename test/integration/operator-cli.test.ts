import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, run } from '../../cli/infrahub-backup.js';
import { localRunnerEnv, postgresRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import { fileKey } from '../../core/backup/layout.js';
import { writeManifest } from '../../core/backup/seal.js';
import { type PostgresServer, seedPrefect, startPostgres } from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';
import { useLocalS3 } from '../helpers/s3.js';

const Bucket = 'backups-operator-cli';
const target = 'infrahub-lab';
const complete = 'infrahub_backup_20261121_020000';
const incomplete = 'infrahub_backup_20261122_020000';

// The operator CLI in-process (its commander program), against backups the real runner wrote to the
// local S3 server.
describe('operator CLI: list, inspect, verify', () => {
  const local = useLocalS3(Bucket);
  let postgres: PostgresServer;
  const saved = { ...process.env };

  /** Runs the CLI; its output and exit code. */
  const cli = async (...args: string[]) => {
    const lines: string[] = [];
    const errors: string[] = [];
    const code = await run(
      ['--bucket', Bucket, '--endpoint', local.server.endpoint, ...args],
      (l) => lines.push(l),
      (l) => errors.push(l),
    );
    return { code, out: lines.join('\n'), err: errors.join('\n') };
  };

  beforeAll(async () => {
    postgres = await startPostgres();
    await seedPrefect(postgres, { flowRuns: 20 });
    Object.assign(process.env, local.server.env());
    const env = (backupId: string) => ({
      ...localRunnerEnv(local.server, { target, backupId, bucket: Bucket }),
      ...postgresRunnerEnv(postgres),
    });
    for (const id of [complete, incomplete]) {
      const r = await runRunner('backup-postgres', env(id));
      expect(r.code, r.stderr).toBe(0);
    }
    await writeManifest(local.s3, Bucket, { target, backupId: complete, components: ['task-manager-db'] });
  }, scaled(120_000));

  afterAll(async () => {
    process.env = saved;
    await postgres?.stop();
  });

  it('lists every backup of every target: age, size per component, complete or not, never verified', async () => {
    const text = await cli('list');
    expect(text.code, text.err).toBe(EXIT.ok);
    expect(text.out).toMatch(new RegExp(`^${target}$`, 'm'));
    expect(text.out).toMatch(
      new RegExp(`${complete} .* complete .*task-manager-db [\\d.]+ KiB.*never verified`),
    );
    expect(text.out).toMatch(new RegExp(`${incomplete} .* INCOMPLETE`));
    const json = await cli('--json', 'list', '--target', target);
    const entries = JSON.parse(json.out) as Array<{
      backupId: string;
      complete: boolean;
      sizes: Record<string, number>;
    }>;
    expect(entries.map((e) => [e.backupId, e.complete])).toEqual([
      [incomplete, false],
      [complete, true],
    ]);
    expect(entries[1]?.sizes['task-manager-db']).toBeGreaterThan(0);
  });

  it('inspects a manifest, as text or as the JSON itself', async () => {
    const text = await cli('inspect', complete);
    expect(text.code, text.err).toBe(EXIT.ok);
    expect(text.out).toMatch(/components\s+task-manager-db/);
    expect(text.out).toMatch(/task db\s+prefect: \d+ tables, \d+ rows/);
    expect(text.out).toMatch(/prefect\.dump .* sha256 [0-9a-f]{64}/);
    const json = JSON.parse((await cli('--json', 'inspect', complete, '--target', target)).out);
    expect(json).toMatchObject({ backup_id: complete, components: ['task-manager-db'], target });
  });

  it('verifies with S3 checksums, records it for list, and fails naming a changed file', async () => {
    const ok = await cli('verify', complete);
    expect(ok.code, ok.err).toBe(EXIT.ok);
    expect(ok.out).toMatch(
      /1 files match the manifest \(S3 checksums, sizes and version ids; nothing downloaded\)/,
    );
    expect((await cli('list')).out).toMatch(
      new RegExp(`${complete} .* verified \\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2} ok`),
    );
    const deepRun = await cli('--json', 'verify', complete, '--deep');
    // Each download is a progress line on standard error (plain lines when not a terminal).
    expect(deepRun.err).toMatch(/^prefect\.dump [\d.]+ KiB \(100 %\)$/m);
    const deep = JSON.parse(deepRun.out);
    expect(deep).toMatchObject({ ok: true, downloaded: 1 });

    await local.s3.send(
      new PutObjectCommand({ Bucket, Key: fileKey(target, complete, 'prefect.dump'), Body: 'tampered' }),
    );
    const bad = await cli('verify', complete);
    expect(bad.code).toBe(EXIT.failed);
    expect(bad.out).toMatch(/prefect\.dump/);
    expect((await cli('list')).out).toMatch(new RegExp(`${complete} .* verified .* FAILED`));
  });

  it('answers bad arguments with the usage and exit code 2, and an absent backup with 3', async () => {
    const unknown = await cli('lst');
    expect(unknown.code).toBe(EXIT.usage);
    expect(unknown.err).toMatch(
      /unknown command 'lst'[\s\S]*Did you mean list\?[\s\S]*Usage: infrahub-backup/,
    );
    const badId = await cli('inspect', 'yesterday');
    expect(badId.code).toBe(EXIT.usage);
    expect(badId.err).toMatch(/backup id "yesterday" must look like infrahub_backup_YYYYMMDD_HHMMSS/);
    const noBucket = await run(
      ['list'],
      () => undefined,
      () => undefined,
    );
    expect(noBucket).toBe(EXIT.usage);
    const absent = await cli('inspect', 'infrahub_backup_20200101_000000');
    expect(absent.code).toBe(EXIT.notFound);
    expect(absent.err).toMatch(/no complete backup infrahub_backup_20200101_000000/);
    const help = await cli('verify', '--help');
    expect(help.code).toBe(EXIT.ok);
    expect(help.out).toMatch(/Examples:\n {2}infrahub-backup verify/);
  });
});

// Issue 17, item 3: every refusal of an argument comes before any AWS call, with its exit code.
describe('operator CLI: arguments refused before S3', () => {
  const local = useLocalS3('backups-cli-arguments');
  const saved = { ...process.env };
  const config = 'config/example.json';
  beforeAll(() => {
    Object.assign(process.env, local.server.env());
  });
  afterAll(() => {
    process.env = saved;
  });
  const cli = async (...args: string[]) => {
    const lines: string[] = [];
    const errors: string[] = [];
    const code = await run(
      args,
      (l) => lines.push(l),
      (l) => errors.push(l),
    );
    return { code, out: lines.join('\n'), err: errors.join('\n') };
  };
  const at = () => ['--bucket', 'backups-cli-arguments', '--endpoint', local.server.endpoint];

  it('an endpoint that is not a URL: exit 2 naming --endpoint', async () => {
    const bad = await cli('--bucket', 'b', '--endpoint', 'notaurl', 'list');
    expect(bad.code, bad.err).toBe(EXIT.usage);
    expect(bad.err).toMatch(/--endpoint "notaurl" is not an http\(s\) URL/);
  });

  it('a target name outside the rule: exit 2; one the configuration lacks: exit 3', async () => {
    for (const args of [
      ['list', '--target', ''],
      ['list', '--target', '../x'],
      ['verify', 'infrahub_backup_20261121_020000', '--target', '../../x'],
    ]) {
      const bad = await cli(...at(), ...args);
      expect(bad.code, `${args.join(' ')}: ${bad.err}`).toBe(EXIT.usage);
      expect(bad.err).toMatch(/--target ".*": must be 2-40 characters/);
    }
    const unknown = await cli(...at(), '--config', config, 'list', '--target', 'nope');
    expect(unknown.code, unknown.err).toBe(EXIT.notFound);
    expect(unknown.err).toMatch(/target "nope" is not configured \(known: infrahub-prod, infrahub-lab\)/);
  });

  it('backup --local of an unconfigured target fails before the synthesis (exit 3)', async () => {
    const t0 = Date.now();
    const bad = await cli(...at(), '--config', config, 'backup', '--local', '--target', 'nope');
    expect(bad.code, bad.err).toBe(EXIT.notFound);
    expect(bad.err).toMatch(/target "nope" is not configured/);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('--retry-interval: a bad value exit 2 naming it; without --local exit 2 (AWS keeps its Retry pauses)', async () => {
    const bad = await cli(...at(), '--config', config, 'backup', '--local', '--retry-interval', 'soon');
    expect(bad.code, bad.err).toBe(EXIT.usage);
    expect(bad.err).toMatch(/--retry-interval must be a number of seconds from 0 to 3600, not "soon"/);
    for (const command of ['backup', 'restore']) {
      const args = command === 'backup' ? [] : ['--target', 'infrahub-lab', '--backup-id', 'latest'];
      const onAws = await cli(...at(), '--config', config, command, ...args, '--retry-interval', '5');
      expect(onAws.code, onAws.err).toBe(EXIT.usage);
      expect(onAws.err).toMatch(/--retry-interval applies to a run with --local only/);
    }
  });

  it('backup --local into a bucket that does not exist: exit 4 naming it, before the synthesis', async () => {
    const t0 = Date.now();
    const bad = await cli(
      '--bucket',
      'no-such-bucket-here',
      '--endpoint',
      local.server.endpoint,
      '--config',
      config,
      'backup',
      '--local',
      '--target',
      'infrahub-lab',
    );
    expect(bad.code, bad.err).toBe(EXIT.storage);
    expect(bad.err).toMatch(/s3:\/\/no-such-bucket-here: no such bucket/);
    expect(Date.now() - t0).toBeLessThan(scaled(15_000));
  });

  it('import of a file that does not exist: exit 2 saying so, whatever its name', async () => {
    for (const file of ['/tmp/nonexist.tar.gz', '/tmp/infrahub_backup_20261121_020000.tar.gz']) {
      const bad = await cli(...at(), '--config', config, 'import', file, '--target', 'infrahub-lab');
      expect(bad.code, bad.err).toBe(EXIT.usage);
      expect(bad.err).toContain(`${file}: no such file`);
    }
  });
});

describe('the installed executable', () => {
  it('runs as the package bin: help with every command, exit 0; a bad command, exit 2', async () => {
    const { spawnSync } = await import('node:child_process');
    const help = spawnSync(process.execPath, ['bin/infrahub-backup.mjs', '--help'], { encoding: 'utf8' });
    expect(help.status, help.stderr).toBe(0);
    for (const command of ['list', 'inspect', 'verify', 'backup', 'restore', 'status', 'export', 'import'])
      expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    const bad = spawnSync(process.execPath, ['bin/infrahub-backup.mjs', 'frobnicate'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown command 'frobnicate'/);
  });
});
