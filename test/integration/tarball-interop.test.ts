import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, run } from '../../cli/infrahub-backup.js';
import { localDeploymentConfig } from '../../cli/local/harness-target.js';
import {
  localRunnerEnv,
  neo4jRunnerEnv,
  postgresRunnerEnv,
  runRunner,
} from '../../cli/local/runner-process.js';
import { exportBackup } from '../../cli/ops/tarball.js';
import { readManifest } from '../../core/backup/manifest.js';
import {
  countGraph,
  countTables,
  type Neo4jServer,
  type PostgresServer,
  seedGraph,
  seedPrefect,
  startNeo4j,
  startPostgres,
} from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';
import { useLocalS3 } from '../helpers/s3.js';

const Bucket = 'backups-interop';
const backupId = 'infrahub_backup_20261120_010000';
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

// A tarball made the way OpsMill's infrahub-backup makes it (real pg_dump and neo4j-admin dumps under
// backup/, its backup_information.json keys, tar+gzip), imported, restored, exported and re-imported.
describe('infrahub-backup tarballs: import, restore, export, re-import', () => {
  const local = useLocalS3(Bucket);
  let postgres: PostgresServer;
  let neo4j: Neo4jServer;
  let work: string;
  let tarball: string;
  let configFile: string;
  let original: Record<string, string>;
  let atBackup: { tables: Record<string, number>; graph: { nodes: number; relationships: number } };
  const saved = { ...process.env };

  const cli = async (...args: string[]) => {
    const lines: string[] = [];
    const errors: string[] = [];
    const code = await run(
      ['--bucket', Bucket, '--endpoint', local.server.endpoint, '--config', configFile, ...args],
      (l) => lines.push(l),
      (l) => errors.push(l),
    );
    return { code, out: lines.join('\n'), err: errors.join('\n') };
  };

  beforeAll(async () => {
    [postgres, neo4j] = await Promise.all([startPostgres(), startNeo4j()]);
    await seedPrefect(postgres, { flowRuns: 30 });
    await seedGraph(neo4j, { devices: 12 });
    Object.assign(process.env, local.server.env());
    atBackup = { tables: await countTables(postgres, 'prefect'), graph: await countGraph(neo4j) };

    // The archive, as infrahub-backup builds it.
    work = mkdtempSync(join(tmpdir(), 'interop-'));
    const dir = join(work, 'backup');
    mkdirSync(join(dir, 'database'), { recursive: true });
    execFileSync(postgres.tool('pg_dump'), ['-Fc', '-f', join(dir, 'prefect.dump'), '--dbname=prefect'], {
      env: { ...process.env, ...postgres.env('prefect') },
    });
    await neo4j.stopDbms();
    for (const db of ['neo4j', 'system']) {
      execFileSync(neo4j.adminPath, ['database', 'dump', db, `--to-path=${join(dir, 'database')}`], {
        env: { ...process.env, ...neo4j.adminEnv() },
      });
    }
    await neo4j.startDbms();
    original = Object.fromEntries(
      ['database/neo4j.dump', 'database/system.dump', 'prefect.dump'].map((p) => [p, sha256(join(dir, p))]),
    );
    writeFileSync(
      join(dir, 'backup_information.json'),
      JSON.stringify(
        {
          metadata_version: 2025111200,
          backup_id: backupId,
          created_at: '2026-11-20T01:00:00Z',
          tool_version: '1.3.0',
          infrahub_version: '1.5.2',
          components: ['database', 'task-manager-db'],
          checksums: original,
          neo4j_edition: 'community',
          redacted: false,
          encrypted: false,
        },
        null,
        4,
      ),
    );
    tarball = join(work, `${backupId}.tar.gz`);
    execFileSync('tar', ['-czf', tarball, '-C', work, 'backup']);

    const config = localDeploymentConfig([
      {
        name: 'infrahub-lab',
        postgres,
        neo4j,
        infrahub: { address: 'http://127.0.0.1:1', token: 't' },
        storagePath: work,
      },
      {
        name: 'infrahub-copy',
        postgres,
        neo4j,
        infrahub: { address: 'http://127.0.0.1:1', token: 't' },
        storagePath: work,
      },
    ]);
    configFile = join(work, 'deployment.json');
    writeFileSync(configFile, JSON.stringify(config));
  }, 420_000); // two real servers started on a machine that may be busy

  afterAll(async () => {
    process.env = saved;
    await Promise.allSettled([postgres?.stop(), neo4j?.stop()]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('imports the archive after checking every checksum, as a complete backup of the target', async () => {
    const imported = await cli('import', tarball, '--target', 'infrahub-lab');
    expect(imported.code, imported.err).toBe(EXIT.ok);
    expect(imported.out).toMatch(
      /infrahub-lab\/infrahub_backup_20261120_010000: 3 files, .* every checksum matches; retention monthly/,
    );
    // (the first complete backup of its month: the GFS classifier keeps it as the monthly one)
    const manifest = await readManifest(local.s3, Bucket, 'infrahub-lab', backupId);
    expect(manifest).toMatchObject({
      backup_id: backupId,
      checksums: original,
      target: 'infrahub-lab',
      neo4j: {
        method: 'dump',
        databases: [
          { name: 'neo4j', files: ['database/neo4j.dump'] },
          { name: 'system', files: ['database/system.dump'] },
        ],
      },
    });
    expect((await cli('verify', backupId, '--target', 'infrahub-lab')).code).toBe(EXIT.ok);
    // Never over an existing backup.
    const again = await cli('import', tarball, '--target', 'infrahub-lab');
    expect(again.code).toBe(EXIT.failed);
    expect(again.err).toMatch(/already exists: an import never replaces a backup/);
  });

  it('restores the imported backup with the runner: the data comes back', async () => {
    const client = new pg.Client({ connectionString: postgres.url('prefect') });
    await client.connect();
    await client.query("INSERT INTO flow_run (name, state_type) VALUES ('after', 'RUNNING')");
    await client.end();
    const session = neo4j.driver().session();
    await session.run("CREATE (:Node {uuid: 'after'})");
    await session.close();

    const env = {
      ...localRunnerEnv(local.server, { target: 'infrahub-lab', backupId, bucket: Bucket }),
      ...postgresRunnerEnv(postgres),
      ...neo4jRunnerEnv(neo4j),
      RESTORE_ID: 'restore_20261122_010000_interop',
      RESTORE_WORK_DIR: join(work, 'restore'),
    };
    const pgRun = await runRunner('restore-postgres', env);
    expect(pgRun.code, pgRun.stderr).toBe(0);
    await neo4j.stopDbms();
    const neoRun = await runRunner('restore-neo4j', env);
    await neo4j.startDbms();
    expect(neoRun.code, neoRun.stderr).toBe(0);
    expect(await countTables(postgres, 'prefect')).toEqual(atBackup.tables);
    expect(await countGraph(neo4j)).toEqual(atBackup.graph);
  }, 600_000); // a restore and a DBMS stop and start on a machine that may be busy

  it('exports it again under backup/, and the re-imported copy has the same checksums', async () => {
    const outDir = mkdtempSync(join(work, 'export-'));
    const exported = await cli('--json', 'export', backupId, '--target', 'infrahub-lab', '--out', outDir);
    expect(exported.code, exported.err).toBe(EXIT.ok);
    const file = (JSON.parse(exported.out) as { file: string }).file;
    expect(file).toBe(join(outDir, `${backupId}.tar.gz`));
    const entries = execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).trim().split('\n').sort();
    expect(entries).toEqual([
      'backup/backup_information.json',
      'backup/database/neo4j.dump',
      'backup/database/system.dump',
      'backup/prefect.dump',
    ]);
    const unpacked = mkdtempSync(join(work, 'unpacked-'));
    execFileSync('tar', ['-xzf', file, '-C', unpacked]);
    for (const [path, sum] of Object.entries(original))
      expect(sha256(join(unpacked, 'backup', path)), path).toBe(sum);
    const info = JSON.parse(readFileSync(join(unpacked, 'backup', 'backup_information.json'), 'utf8'));
    expect(info).toMatchObject({
      metadata_version: 2025111200,
      backup_id: backupId,
      checksums: original,
      neo4j_edition: 'community',
    });

    const copy = await cli('import', file, '--target', 'infrahub-copy');
    expect(copy.code, copy.err).toBe(EXIT.ok);
    expect((await readManifest(local.s3, Bucket, 'infrahub-copy', backupId))?.checksums).toEqual(original);
  });

  it('export refuses a missing or non-folder --out and never replaces an existing archive', async () => {
    const missing = await cli('export', backupId, '--target', 'infrahub-lab', '--out', join(work, 'nowhere'));
    expect(missing.code).toBe(EXIT.usage);
    expect(missing.err).toMatch(/--out .*nowhere does not exist: create it first/);
    const notDir = join(work, 'a-file');
    writeFileSync(notDir, 'x');
    const onFile = await cli('export', backupId, '--target', 'infrahub-lab', '--out', notDir);
    expect(onFile.code).toBe(EXIT.usage);
    expect(onFile.err).toMatch(/--out .*a-file is not a folder/);
    const outDir = mkdtempSync(join(work, 'exists-'));
    const existing = join(outDir, `${backupId}.tar.gz`);
    writeFileSync(existing, 'an earlier archive');
    const again = await cli('export', backupId, '--target', 'infrahub-lab', '--out', outDir);
    expect(again.code).toBe(EXIT.usage);
    expect(again.err).toMatch(/\.tar\.gz already exists: remove it or choose another --out/);
    expect(readFileSync(existing, 'utf8')).toBe('an earlier archive');
    expect(readdirSync(outDir)).toEqual([`${backupId}.tar.gz`]);
  });

  it('export names the file whose stored size differs from the manifest and leaves no archive', async () => {
    const manifest = await readManifest(local.s3, Bucket, 'infrahub-lab', backupId);
    if (!manifest) throw new Error('no manifest');
    const outDir = mkdtempSync(join(work, 'size-'));
    for (const delta of [1, -1]) {
      const wrong = {
        ...manifest,
        sizes: { ...manifest.sizes, 'prefect.dump': (manifest.sizes?.['prefect.dump'] ?? 0) + delta },
      };
      await expect(exportBackup(local.s3, Bucket, 'infrahub-lab', wrong, outDir)).rejects.toThrow(
        /prefect\.dump read from S3 \(.*\) has \d+ bytes, the manifest records \d+: no archive written/,
      );
      expect(readdirSync(outDir)).toEqual([]);
    }
  });

  it('refuses an archive whose file does not match its checksums, leaving no complete backup', async () => {
    const bad = mkdtempSync(join(work, 'bad-'));
    execFileSync('tar', ['-xzf', tarball, '-C', bad]);
    writeFileSync(join(bad, 'backup', 'prefect.dump'), 'not a dump');
    const badTarball = join(bad, 'infrahub_backup_20261119_010000.tar.gz');
    const info = JSON.parse(readFileSync(join(bad, 'backup', 'backup_information.json'), 'utf8'));
    writeFileSync(
      join(bad, 'backup', 'backup_information.json'),
      JSON.stringify({ ...info, backup_id: 'infrahub_backup_20261119_010000' }),
    );
    execFileSync('tar', ['-czf', badTarball, '-C', bad, 'backup']);
    const refused = await cli('import', badTarball, '--target', 'infrahub-lab');
    expect(refused.code).toBe(EXIT.failed);
    expect(refused.err).toMatch(/does not match its backup_information\.json[\s\S]*prefect\.dump: sha256/);
    expect(
      await readManifest(local.s3, Bucket, 'infrahub-lab', 'infrahub_backup_20261119_010000'),
    ).toBeUndefined();
    expect((await cli('list', '--target', 'infrahub-lab')).out).toMatch(
      /infrahub_backup_20261119_010000 .* INCOMPLETE/,
    );
  });

  it(
    'backs up and restores from the CLI with --local: the synthesized state machines, run here',
    async () => {
      const secrets = local.server.secretsManager();
      const put = (Name: string, value: unknown) =>
        secrets.send(new CreateSecretCommand({ Name, SecretString: JSON.stringify(value) }));
      await put('infrahub-lab/prefect-postgres', { username: postgres.user, password: postgres.password });
      await put('infrahub-lab/neo4j', { username: 'neo4j', password: neo4j.password });
      await put('infrahub-lab/infrahub-api-token', { token: 't' });
      process.env.PG_BINDIR = postgres.binDir;

      const planned = await cli('--json', 'restore', '--local', '--target', 'infrahub-lab', '--dry-run');
      expect(planned.code, planned.err).toBe(EXIT.ok);
      expect(JSON.parse(planned.out)).toMatchObject({
        status: 'SUCCEEDED',
        output: {
          dryRun: true,
          backupId,
          target: 'infrahub-lab',
          components: ['database', 'task-manager-db'],
        },
      });
      expect(planned.err).toMatch(/PlanRestore/);

      const backedUp = await cli(
        '--json',
        'backup',
        '--local',
        '--target',
        'infrahub-lab',
        '--component',
        'task-manager-db',
        '--force',
      );
      expect(backedUp.code, backedUp.err).toBe(EXIT.ok);
      const outcome = JSON.parse(backedUp.out) as {
        status: string;
        output: { backupId: string; ok: boolean };
      };
      expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { ok: true } });
      // The state machine's progress went to standard error, state by state.
      expect(backedUp.err).toMatch(
        / s {2}Plan\n[\s\S]* s {2}\[infrahub-lab\] DumpPostgres\n[\s\S]* s {2}\[infrahub-lab\] WriteManifest/,
      );
      expect((await cli('list', '--target', 'infrahub-lab')).out).toMatch(
        new RegExp(`${outcome.output.backupId} .* complete`),
      );

      const errors: string[] = [];
      const noEndpoint = await run(
        ['--bucket', Bucket, '--config', configFile, 'backup', '--local'],
        () => undefined,
        (l) => errors.push(l),
      );
      expect(noEndpoint).toBe(EXIT.usage);
      expect(errors.join('\n')).toMatch(
        /--local needs the deployment configuration \(--config\), an AWS-compatible endpoint/,
      );
    },
    scaled(180_000),
  );

  it('answers an import without a configuration or of an unknown target with a clear error', async () => {
    const noConfig = await run(
      ['--bucket', Bucket, '--endpoint', local.server.endpoint, 'import', tarball, '--target', 'x-y'],
      () => undefined,
      () => undefined,
    );
    expect(noConfig).toBe(EXIT.usage);
    const unknown = await cli('import', tarball, '--target', 'infrahub-stage');
    expect(unknown.code).toBe(EXIT.notFound);
    expect(unknown.err).toMatch(/target "infrahub-stage" is not configured/);
    const missingTarget = await cli('import', tarball);
    expect(missingTarget.code).toBe(EXIT.usage);
    expect(missingTarget.err).toMatch(/required option '--target <name>'/);
  });
});
