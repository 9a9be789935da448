import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importTarball } from '../../cli/ops/tarball.js';
import { isComplete } from '../../core/backup/catalog.js';
import { useLocalS3 } from '../helpers/s3.js';

const Bucket = 'backups-import-malformed';
const target = 'infrahub-lab';
const id = 'infrahub_backup_20261120_010000';

// Issue 12 review, finding 9: a malformed archive is refused naming the file (not a bare zlib error),
// and a manifest that is not UTF-8 is refused instead of read with U+FFFD.
describe('malformed archives (real S3 server)', () => {
  const local = useLocalS3(Bucket);
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'malformed-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function archive(name: string, manifest: Buffer) {
    const file = join(dir, name, `${id}.tar.gz`);
    mkdirSync(join(dir, name), { recursive: true });
    const pack = tar.pack();
    const written = pipeline(pack, createGzip(), createWriteStream(file));
    pack.entry({ name: 'backup/prefect.dump' }, Buffer.alloc(64 * 1024, 1));
    pack.entry({ name: 'backup/backup_information.json' }, manifest);
    pack.finalize();
    await written;
    return file;
  }

  it('refuses an archive that is not gzip, or cut short, naming the file', async () => {
    const good = await archive('good', Buffer.from('{}'));
    const notGzip = join(dir, 'plain', `${id}.tar.gz`);
    mkdirSync(join(dir, 'plain'), { recursive: true });
    writeFileSync(notGzip, 'this is not an archive');
    const cut = join(dir, 'cut', `${id}.tar.gz`);
    mkdirSync(join(dir, 'cut'), { recursive: true });
    const bytes = readFileSync(good);
    writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
    for (const file of [notGzip, cut]) {
      await expect(importTarball(local.s3, Bucket, file, target, {})).rejects.toMatchObject({
        name: 'ManifestError',
        message: expect.stringMatching(
          new RegExp(
            `^${id}\\.tar\\.gz is not a readable \\.tar\\.gz archive \\(.+\\); nothing was made a backup`,
          ),
        ),
      });
    }
    expect(await isComplete(local.s3, Bucket, target, id)).toBe(false);
  });

  it('refuses a manifest that is not valid UTF-8', async () => {
    const text = Buffer.concat([
      Buffer.from('{"infrahub_version": "1.5'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}'),
    ]);
    const file = await archive('utf8', text);
    await expect(importTarball(local.s3, Bucket, file, target, {})).rejects.toMatchObject({
      name: 'ManifestError',
      message: expect.stringMatching(/backup_information\.json in .* is not valid UTF-8/),
    });
  });
});
