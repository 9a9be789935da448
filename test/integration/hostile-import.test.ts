import { createHash } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzipSync } from 'node:zlib';
import type { S3Client } from '@aws-sdk/client-s3';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importTarball } from '../../cli/ops/tarball.js';
import { isComplete, latestValidBackup } from '../../core/backup/catalog.js';
import { manifestKey } from '../../core/backup/layout.js';
import { readManifest } from '../../core/backup/manifest.js';
import { verifyBackup } from '../../core/backup/verify.js';
import { exists, useLocalS3 } from '../helpers/s3.js';

const Bucket = 'backups-hostile-import';
const target = 'infrahub-lab';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Writes an archive the way infrahub-backup lays it out: entries under backup/, tar + gzip. */
async function archive(dir: string, backupId: string, entries: Record<string, Buffer | string>) {
  const file = join(dir, `${backupId}.tar.gz`);
  const pack = tar.pack();
  const written = pipeline(pack, createGzip(), createWriteStream(file));
  for (const [name, body] of Object.entries(entries)) pack.entry({ name, mode: 0o644 }, body);
  pack.finalize();
  await written;
  return file;
}

const info = (backupId: string, extra: Record<string, unknown>) =>
  JSON.stringify({
    metadata_version: 2025111200,
    backup_id: backupId,
    created_at: '2026-11-20T01:00:00Z',
    tool_version: '1.3.0',
    infrahub_version: '1.5.2',
    components: ['database'],
    checksums: {},
    neo4j_edition: 'community',
    ...extra,
  });

// Issue 12, item 19: everything read from an archive is validated like our own configuration; a
// refused archive leaves no manifest (never "latest", never fresh for the RPO alarm).
describe('hostile imports (real S3 server)', () => {
  const local = useLocalS3(Bucket);
  let s3: S3Client;
  let dir: string;

  beforeAll(() => {
    s3 = local.s3;
    dir = mkdtempSync(join(tmpdir(), 'hostile-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function refused(file: string, backupId: string, message: RegExp) {
    await expect(importTarball(s3, Bucket, file, target, {})).rejects.toMatchObject({
      name: 'ManifestError',
      message: expect.stringMatching(message),
    });
    expect(await exists(s3, Bucket, manifestKey(target, backupId))).toBe(false);
    expect(await isComplete(s3, Bucket, target, backupId)).toBe(false);
  }

  it('refuses an archive of no component and no file: no manifest, not latest', async () => {
    const id = 'infrahub_backup_20261120_010000';
    const file = await archive(dir, id, {
      'backup/backup_information.json': info(id, { components: [], checksums: {} }),
    });
    await refused(file, id, /components: lists no component: a backup holds at least one/);
    const empty = 'infrahub_backup_20261120_013000';
    const nothing = await archive(dir, empty, {
      'backup/backup_information.json': info(empty, { components: ['artifacts'], checksums: {} }),
    });
    await refused(nothing, empty, /lists no file: an archive of nothing is not imported as a backup/);
    expect((await latestValidBackup(s3, Bucket, target)).backupId).toBeUndefined();
  });

  it('refuses an archive holding a link or a device instead of importing without it', async () => {
    for (const [type, extra] of [
      ['symlink', { linkname: '/etc/passwd' }],
      ['link', { linkname: 'backup/prefect.dump' }],
      ['character-device', {}],
    ] as const) {
      const id = 'infrahub_backup_20261120_070000';
      const file = join(dir, `${id}.tar.gz`);
      const pack = tar.pack();
      const written = pipeline(pack, createGzip(), createWriteStream(file));
      pack.entry({ name: 'backup/artifacts/x', type, mode: 0o644, ...extra });
      pack.entry({ name: 'backup/backup_information.json', mode: 0o644 }, info(id, {}));
      pack.finalize();
      await written;
      await refused(file, id, new RegExp(`backup/artifacts/x in .* is a ${type}.*not a file`));
    }
  });

  it('refuses a manifest entry larger than any manifest, without reading it whole', async () => {
    const id = 'infrahub_backup_20261120_080000';
    const file = await archive(dir, id, {
      'backup/backup_information.json': Buffer.alloc(17 * 1024 * 1024, 0x20),
    });
    await refused(file, id, /backup_information\.json in .* is larger than 16 MiB: not a manifest/);
  });

  it('refuses a component without its files', async () => {
    const id = 'infrahub_backup_20261120_020000';
    const file = await archive(dir, id, {
      'backup/backup_information.json': info(id, { components: ['database', 'task-manager-db'] }),
    });
    await refused(
      file,
      id,
      /component database has no database\/ file[\s\S]*component task-manager-db has no prefect\.dump/,
    );
  });

  it('refuses a Neo4j database name that would reach neo4j-admin as an option', async () => {
    const dump = Buffer.from('DZV1 not loaded here');
    const named = 'infrahub_backup_20261120_030000';
    // Named by the file (our import derives the database from it) ...
    const byFile = await archive(dir, named, {
      'backup/backup_information.json': info(named, { checksums: { 'database/--help.dump': sha256(dump) } }),
      'backup/database/--help.dump': dump,
    });
    await refused(byFile, named, /database\/--help\.dump is neither a Neo4j dump/);
    // ... or by the manifest's own neo4j section.
    const listed = 'infrahub_backup_20261120_040000';
    const byManifest = await archive(dir, listed, {
      'backup/backup_information.json': info(listed, {
        checksums: { 'database/neo4j.dump': sha256(dump) },
        neo4j: { method: 'dump', databases: [{ name: '--help', files: ['database/neo4j.dump'] }] },
      }),
      'backup/database/neo4j.dump': dump,
    });
    await refused(byManifest, listed, /neo4j\.databases\.0\.name: "--help" must be a Neo4j database name/);
  });

  it('names the archive and the problem for a malformed backup_information.json', async () => {
    const id = 'infrahub_backup_20261120_050000';
    const file = await archive(dir, id, { 'backup/backup_information.json': '{"metadata_version": 20251' });
    await refused(
      file,
      id,
      /^backup\/backup_information\.json in infrahub_backup_20261120_050000\.tar\.gz is not valid JSON: /,
    );
    const shaped = 'infrahub_backup_20261120_060000';
    const wrong = await archive(dir, shaped, {
      'backup/backup_information.json': JSON.stringify({ backup_id: shaped, checksums: { x: 'y' } }),
    });
    await refused(wrong, shaped, /is not a valid backup_information\.json:\n {2}- metadata_version: /);
  });

  it('refuses unsafe paths in the archive and in its checksums', async () => {
    const body = Buffer.from('x');
    const id = 'infrahub_backup_20261120_070000';
    const file = await archive(dir, id, {
      'backup/backup_information.json': info(id, {
        components: ['artifacts'],
        checksums: { 'artifacts/../../x': sha256(body) },
      }),
    });
    await refused(file, id, /checksums\.artifacts\/\.\.\/\.\.\/x: path .* has a "\." or "\.\." segment/);
    const entry = 'infrahub_backup_20261120_080000';
    const withEntry = await archive(dir, entry, {
      'backup/artifacts/..\\..\\x': body,
      'backup/backup_information.json': info(entry, { components: ['artifacts'], checksums: {} }),
    });
    await refused(withEntry, entry, /backup\/artifacts\/\.\.\\\.\.\\x in .*: contains a backslash/);
  });

  // Review 6, items 3 and 4: a database component must be restorable as its manifest records it.
  it('refuses a database component that cannot be restored, or a neo4j section that does not name its files', async () => {
    const dump = Buffer.concat([Buffer.from('DGV1'), gzipSync(Buffer.from('store files'))]);
    const cases: Array<[string, Record<string, Buffer>, Record<string, unknown>, RegExp]> = [
      [
        'infrahub_backup_20261120_110000',
        { 'database/system.dump': dump },
        {},
        /holds no database other than system/,
      ],
      [
        'infrahub_backup_20261120_110001',
        { 'database/notes.txt': dump },
        {},
        /database\/notes\.txt is neither a Neo4j dump/,
      ],
      [
        'infrahub_backup_20261120_110002',
        { 'database/system.dump': dump, 'database/neo4j.dump': dump },
        { neo4j: { method: 'dump', databases: [{ name: 'neo4j', files: ['database/system.dump'] }] } },
        /database\/system\.dump holds database system, not neo4j[\s\S]*database\/neo4j\.dump is in checksums but no database/,
      ],
      [
        'infrahub_backup_20261120_110003',
        { 'database/neo4j.dump': dump },
        { neo4j: { method: 'backup', databases: [{ name: 'neo4j', files: ['database/neo4j.dump'] }] } },
        /database\/neo4j\.dump is a dump, but the neo4j method is backup/,
      ],
    ];
    for (const [id, files, extra, message] of cases) {
      const file = await archive(dir, id, {
        'backup/backup_information.json': info(id, {
          checksums: Object.fromEntries(Object.entries(files).map(([p, b]) => [p, sha256(b)])),
          ...extra,
        }),
        ...Object.fromEntries(Object.entries(files).map(([p, b]) => [`backup/${p}`, b])),
      });
      await refused(file, id, message);
    }
  });

  // Review 6, item 2: an import checks each dump's format on the bytes it uploads, as a backup does.
  it('refuses an archive whose dumps are not their formats (pg_restore, Neo4j header and body): not latest', async () => {
    const good = Buffer.concat([Buffer.from('DGV1'), gzipSync(Buffer.from('store files'))]);
    const cases: Array<[string, Record<string, Buffer>, RegExp]> = [
      [
        'infrahub_backup_20261120_100000',
        {
          'prefect.dump': Buffer.from('this is not a PostgreSQL archive'),
          'database/system.dump': Buffer.from('DZV1 garbage after the magic'),
          'database/neo4j.dump': good,
        },
        /prefect\.dump is not a valid PostgreSQL custom-format archive: pg_restore cannot read it[\s\S]*database\/system\.dump is not a valid Neo4j dump/,
      ],
      [
        'infrahub_backup_20261120_100001',
        {
          'database/neo4j.dump': Buffer.concat([
            Buffer.from('DZV1'),
            Buffer.from([0x28, 0xb5, 0x2f, 0xfd]),
            Buffer.from('not a zstd frame'),
          ]),
        },
        /database\/neo4j\.dump is not a valid Neo4j dump: its zstd body is corrupt/,
      ],
      [
        'infrahub_backup_20261120_100002',
        { 'database/neo4j.dump': good.subarray(0, good.length - 6) },
        /database\/neo4j\.dump is not a valid Neo4j dump: its gzip body/,
      ],
    ];
    for (const [id, files, message] of cases) {
      const file = await archive(dir, id, {
        'backup/backup_information.json': info(id, {
          components: 'prefect.dump' in files ? ['database', 'task-manager-db'] : ['database'],
          checksums: Object.fromEntries(Object.entries(files).map(([p, b]) => [p, sha256(b)])),
        }),
        ...Object.fromEntries(Object.entries(files).map(([p, b]) => [`backup/${p}`, b])),
      });
      await expect(importTarball(s3, Bucket, file, target, {}), id).rejects.toMatchObject({
        name: 'DumpFormat',
        message: expect.stringMatching(message),
      });
      expect(await exists(s3, Bucket, manifestKey(target, id))).toBe(false);
      expect(await isComplete(s3, Bucket, target, id)).toBe(false);
    }
    expect((await latestValidBackup(s3, Bucket, target)).backupId ?? '').not.toMatch(
      /^infrahub_backup_20261120_1000/,
    );
  });

  it('imports a well-formed archive, which verifies quickly against the import record', async () => {
    // A Neo4j dump header and a whole gzip body: what the import's format check reads.
    const dump = Buffer.concat([Buffer.from('DGV1'), gzipSync(Buffer.from('store files'))]);
    const id = 'infrahub_backup_20261120_090000';
    const file = await archive(dir, id, {
      'backup/backup_information.json': info(id, { checksums: { 'database/neo4j.dump': sha256(dump) } }),
      'backup/database/neo4j.dump': dump,
    });
    await expect(importTarball(s3, Bucket, file, target, {})).resolves.toMatchObject({ files: 1 });
    expect((await readManifest(s3, Bucket, target, id))?.neo4j?.databases).toEqual([
      { name: 'neo4j', files: ['database/neo4j.dump'] },
    ]);
    expect(await verifyBackup(s3, Bucket, target, id)).toMatchObject({
      ok: true,
      proof: { s3FullObject: 1, unproven: [] },
    });
  });
});
