import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importTarball } from '../../cli/ops/tarball.js';
import { LISTED_PROBLEMS, validateManifest } from '../../core/backup/manifest.js';
import { useLocalS3 } from '../helpers/s3.js';

const Bucket = 'backups-import-bounded';
const target = 'infrahub-lab';
const id = 'infrahub_backup_20261120_010000';
const files = 20_000;

const manifest = (checksums: Record<string, string>) => ({
  metadata_version: 2025111200,
  backup_id: id,
  created_at: '2026-11-20T01:00:00Z',
  tool_version: '1.3.0',
  infrahub_version: '1.5.2',
  components: ['artifacts'],
  checksums,
});

// Issue 12 review, finding 11: a manifest listing many missing or unsafe files makes an error of a
// bounded number of lines ("… and N more"), not one line per file.
describe('errors list a bounded number of problems', () => {
  const local = useLocalS3(Bucket);
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bounded-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(`an archive whose manifest lists ${files} files it does not hold`, async () => {
    const checksums = Object.fromEntries(
      Array.from({ length: files }, (_, i) => [`artifacts/f${i}.txt`, 'a'.repeat(64)]),
    );
    const file = join(dir, `${id}.tar.gz`);
    const pack = tar.pack();
    const written = pipeline(pack, createGzip(), createWriteStream(file));
    pack.entry({ name: 'backup/backup_information.json' }, JSON.stringify(manifest(checksums)));
    pack.finalize();
    await written;
    const error = await importTarball(local.s3, Bucket, file, target, {}).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    const message = (error as Error).message;
    expect(message).toMatch(/artifacts\/f0\.txt: missing from the archive/);
    expect(message).toMatch(new RegExp(`… and ${files - LISTED_PROBLEMS} more$`));
    expect(message.split('\n').length).toBeLessThanOrEqual(LISTED_PROBLEMS + 2);
    expect(message.length).toBeLessThan(10_000);
  });

  it(`a manifest with ${files} unsafe paths`, () => {
    const checksums = Object.fromEntries(
      Array.from({ length: files }, (_, i) => [`../x${i}`, 'a'.repeat(64)]),
    );
    const error = (() => {
      try {
        validateManifest(manifest(checksums), 'test', { target, backupId: id });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error?.name).toBe('ManifestError');
    expect(error?.message.split('\n').length).toBeLessThanOrEqual(LISTED_PROBLEMS + 2);
    expect(error?.message).toMatch(/… and \d+ more$/);
  });
});
