/**
 * The operator CLI as an operator gets it: `npm pack` (which builds the JavaScript, package.json
 * "prepack"), the tarball installed into an empty prefix (`npm i -g --prefix`), and the installed
 * `infrahub-backup` run from an unrelated empty folder: the help of every command, --version, and
 * real commands against a local S3 server: a backup with --local (the synthesized state machine run
 * here, its runner step a child process of the package's runner bundle dumping a real PostgreSQL),
 * then list, verify and export of that backup. Nothing may come from the repository at run time: the
 * package holds no TypeScript of the CLI, no tsx, and the folder it runs from holds nothing.
 *
 * Time: packing (with the build) about 10 s, installing from the npm cache about 30 s, the commands
 * about 40 s; several times that on a loaded machine, hence the long timeouts.
 */
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, sep } from 'node:path';
import { promisify } from 'node:util';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../cli/infrahub-backup.js';
import { type PostgresServer, repoRoot, seedPrefect, startPostgres } from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';
import { useLocalS3 } from '../helpers/s3.js';

const run = promisify(execFile);
const Bucket = 'infrahub-backups-package';
const target = 'infrahub-lab';
/** Every command the CLI has: one file each in cli/commands; the installed program's help must list exactly these. */
const COMMANDS = readdirSync(join(repoRoot, 'cli', 'commands'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.replace(/\.ts$/, ''))
  .sort();

describe('the packed CLI, installed and run from an unrelated folder', () => {
  const local = useLocalS3(Bucket);
  let work: string;
  let prefix: string;
  let elsewhere: string;
  let bin: string;
  let installed: string;
  let postgres: PostgresServer;
  let configFile: string;

  /**
   * Runs the installed executable in the empty folder with only PATH, HOME and `env` set. PATH holds
   * the install prefix's bin, node's own folder and the system folders, never a folder of the
   * repository (its node_modules/.bin would lend the CLI esbuild, tsx or cdk: issue 17, item 1).
   */
  const cli = async (args: string[], env: Record<string, string> = {}) => {
    const PATH = [join(prefix, 'bin'), dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin']
      .filter((dir) => dir !== repoRoot && !dir.startsWith(`${repoRoot}${sep}`))
      .join(delimiter);
    try {
      const { stdout, stderr } = await run(bin, args, {
        cwd: elsewhere,
        env: { PATH, HOME: process.env.HOME ?? '/tmp', ...env },
        maxBuffer: 64 * 1024 * 1024,
      });
      return { code: 0, out: stdout, err: stderr };
    } catch (e) {
      const failed = e as { code?: number; stdout?: string; stderr?: string };
      return { code: failed.code ?? -1, out: failed.stdout ?? '', err: failed.stderr ?? '' };
    }
  };
  /** The global flags that point the CLI at the local server, and that server's credentials. */
  const aws = () => ({
    args: ['--bucket', Bucket, '--endpoint', local.server.endpoint, '--config', configFile],
    env: local.server.env(),
  });

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'cli-package-'));
    prefix = join(work, 'prefix');
    elsewhere = join(work, 'elsewhere');
    mkdirSync(elsewhere);
    const packed = join(work, 'packed');
    mkdirSync(packed);
    const npm = { env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false' } };
    // npm pack runs "prepack" (npm run build) in the repository, then writes the tarball.
    await run('npm', ['pack', '--pack-destination', packed], { ...npm, cwd: repoRoot, maxBuffer: 1 << 26 });
    const tgz = readdirSync(packed).find((f) => /^infrahub-backup-aws-.*\.tgz$/.test(f));
    if (!tgz) throw new Error(`npm pack wrote no infrahub-backup-aws-*.tgz in ${packed}`);
    // Installed as an operator would, from an empty folder; dependencies from the npm cache when there.
    await run('npm', ['install', '--global', '--prefix', prefix, '--prefer-offline', join(packed, tgz)], {
      ...npm,
      cwd: elsewhere,
      maxBuffer: 1 << 26,
    });
    bin = join(prefix, 'bin', 'infrahub-backup');
    installed = join(prefix, 'lib', 'node_modules', 'infrahub-backup-aws');

    postgres = await startPostgres();
    await seedPrefect(postgres, { flowRuns: 5 });
    const secrets = local.server.secretsManager();
    const put = (Name: string, value: unknown) =>
      secrets.send(new CreateSecretCommand({ Name, SecretString: JSON.stringify(value) }));
    await put(`${target}/prefect-postgres`, { username: postgres.user, password: postgres.password });
    await put(`${target}/neo4j`, { username: 'neo4j', password: 'not-used' });
    await put(`${target}/infrahub-api-token`, { token: 'not-used' });
    // The configuration lives outside both the repository and the folder the CLI runs from.
    configFile = join(work, 'deployment.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        name: 'infrahub-backup-package',
        region: 'us-east-1',
        network: {
          vpcId: 'vpc-00000000',
          subnetIds: ['subnet-00000000'],
          availabilityZones: ['us-east-1a'],
          securityGroupIds: ['sg-00000000'],
        },
        targets: [
          {
            name: target,
            // Only the task manager's database is backed up here: no Neo4j runs.
            neo4j: {
              host: '127.0.0.1',
              boltPort: 7687,
              edition: 'community',
              version: '5.26.26',
              credentialsSecret: `${target}/neo4j`,
              tls: { mode: 'disable' },
              dbms: { cluster: 'local', service: `${target}-neo4j`, dataEfsFileSystemId: 'fs-00000000' },
            },
            postgres: {
              host: '127.0.0.1',
              port: postgres.port,
              majorVersion: postgres.majorVersion,
              credentialsSecret: `${target}/prefect-postgres`,
              tls: { mode: 'disable' },
            },
            infrahub: { address: 'http://127.0.0.1:1', tokenSecret: `${target}/infrahub-api-token` },
            artifacts: { type: 'path', path: work, efsFileSystemId: 'fs-00000000' },
          },
        ],
        retention: { daily: 7, weekly: 4, monthly: 12 },
      }),
    );
  }, scaled(900_000));

  afterAll(async () => {
    await postgres?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('installs JavaScript only: no CLI TypeScript, no tsx; esbuild for the local synthesis', () => {
    expect(existsSync(bin)).toBe(true);
    expect(existsSync(join(installed, 'dist', 'cli', 'infrahub-backup.mjs'))).toBe(true);
    expect(existsSync(join(installed, 'dist', 'runner', 'runner.mjs'))).toBe(true);
    expect(existsSync(join(installed, 'cli'))).toBe(false);
    expect(existsSync(join(installed, 'node_modules', 'tsx'))).toBe(false);
    // aws-cdk-lib's NodejsFunction bundling looks for esbuild (require, then PATH) when the local mode
    // synthesizes, and builds a Docker image when there is none: a dependency of the package.
    expect(existsSync(join(installed, 'node_modules', 'esbuild', 'package.json'))).toBe(true);
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it(
    'prints its version and the help of every command from any folder',
    async () => {
      const version = await cli(['--version']);
      expect(version.code, version.err).toBe(EXIT.ok);
      expect(version.out.trim()).toBe(
        (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version,
      );

      const help = await cli(['--help']);
      expect(help.code, help.err).toBe(EXIT.ok);
      const listed = [...(help.out.split('Commands:')[1] ?? '').matchAll(/^ {2}([a-z]+)\b/gm)]
        .map((m) => m[1])
        .filter((c) => c !== 'help');
      expect([...listed].sort()).toEqual(COMMANDS);
      for (const command of COMMANDS) {
        const shown = await cli([command, '--help']);
        expect(shown.code, `${command} --help: ${shown.err}`).toBe(EXIT.ok);
        expect(shown.out).toMatch(new RegExp(`^Usage: infrahub-backup ${command} `));
        expect(shown.out).toMatch(/Examples:\n {2}infrahub-backup /);
      }
      const unknown = await cli(['frobnicate']);
      expect(unknown.code).toBe(EXIT.usage);
      expect(unknown.err).toMatch(/unknown command 'frobnicate'/);
    },
    scaled(300_000),
  );

  it(
    'backs up with --local, then lists, verifies and exports the backup, from an empty folder',
    async () => {
      const { args, env } = aws();
      const backedUp = await cli(
        [
          ...args,
          '--json',
          'backup',
          '--local',
          '--target',
          target,
          '--component',
          'task-manager-db',
          '--force',
        ],
        // from-env hands PG_BINDIR to the runner (the image has its own pg_dump).
        { ...env, PG_BINDIR: postgres.binDir },
      );
      expect(backedUp.code, backedUp.err).toBe(EXIT.ok);
      const outcome = JSON.parse(backedUp.out) as {
        status: string;
        output: { backupId: string; ok: boolean };
      };
      expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { ok: true } });
      // The runner step ran (the package's runner bundle, as a child process).
      expect(backedUp.err).toMatch(/ s {2}\[infrahub-lab\] DumpPostgres\n/);
      const { backupId } = outcome.output;

      const listed = await cli([...args, 'list'], env);
      expect(listed.code, listed.err).toBe(EXIT.ok);
      expect(listed.out).toMatch(new RegExp(`${backupId} .* complete`));

      const verified = await cli([...args, 'verify', backupId], env);
      expect(verified.code, verified.err).toBe(EXIT.ok);
      expect(verified.out).toMatch(new RegExp(`${target}/${backupId}: \\d+ files match the manifest`));

      const exported = await cli([...args, 'export', backupId], env);
      expect(exported.code, exported.err).toBe(EXIT.ok);
      // --out defaults to the working directory: the folder the CLI was run from.
      expect(readdirSync(elsewhere)).toEqual([`${backupId}.tar.gz`]);
    },
    scaled(600_000),
  );
});
