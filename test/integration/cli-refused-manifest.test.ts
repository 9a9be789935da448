import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, run } from '../../cli/infrahub-backup.js';
import { fileKey, manifestKey } from '../../core/backup/layout.js';
import { sampleManifest } from '../helpers/manifest.js';
import { useLocalS3 } from '../helpers/s3.js';

const Bucket = 'backups-cli-refused';
const target = 'infrahub-lab';
const other = 'infrahub-prod';
const id = 'infrahub_backup_20261121_020000';

// Issue 12 review, finding 4: a manifest that exists but is refused (a key under another target, an
// unsafe path, truncated JSON) is a failed operation on a backup that exists: exit 1 with the reason,
// never "no complete backup" / exit 3, whether --target is given or not.
describe('operator CLI: a refused manifest is exit 1 with its reason', () => {
  const local = useLocalS3(Bucket);
  const saved = { ...process.env };
  let out: string;

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
  const put = (key: string, body: string) =>
    local.s3.send(new PutObjectCommand({ Bucket, Key: key, Body: body }));

  beforeAll(() => {
    Object.assign(process.env, local.server.env());
    out = mkdtempSync(join(tmpdir(), 'cli-refused-'));
  });
  afterAll(() => {
    process.env = saved;
    rmSync(out, { recursive: true, force: true });
  });

  const cases: Array<[string, () => string, RegExp]> = [
    [
      'an s3 key under another target',
      () => {
        const m = sampleManifest(target, id);
        (m.s3 as Record<string, { key: string }>)['prefect.dump'] = {
          ...(m.s3?.['prefect.dump'] as { key: string }),
          key: fileKey(other, id, 'prefect.dump'),
        };
        return JSON.stringify(m);
      },
      /is not this backup's object/,
    ],
    [
      'an unsafe path',
      () => {
        const m = sampleManifest(target, id) as unknown as { checksums: Record<string, string> };
        m.checksums['artifacts/../../../tmp/x'] = 'a'.repeat(64);
        return JSON.stringify(m);
      },
      /artifacts\/\.\.\/\.\.\/\.\.\/tmp\/x/,
    ],
    ['truncated JSON', () => JSON.stringify(sampleManifest(target, id)).slice(0, 40), /not valid JSON/],
  ];

  for (const [what, body, reason] of cases) {
    it(`${what}: verify, inspect and export exit 1 naming the manifest and the problem`, async () => {
      await put(manifestKey(target, id), body());
      for (const args of [
        ['verify', id],
        ['verify', id, '--target', target],
        ['inspect', id],
        ['inspect', id, '--target', target],
        ['export', id, '--out', out],
        ['export', id, '--target', target, '--out', out],
      ]) {
        const r = await cli(...args);
        expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(EXIT.failed);
        expect(r.err).toMatch(/manifest refused/);
        expect(r.err).toContain(manifestKey(target, id));
        expect(r.err).toMatch(reason);
        expect(r.err).not.toMatch(/no complete backup/);
      }
      expect(readdirSync(out)).toEqual([]);
    });
  }

  it('a backup that is absent is still exit 3', async () => {
    const r = await cli('verify', 'infrahub_backup_20261122_020000');
    expect(r.code, r.err).toBe(EXIT.notFound);
    expect(r.err).toMatch(/no complete backup infrahub_backup_20261122_020000/);
  });

  it('a valid manifest of the same id under another target is used; the refused one is a warning', async () => {
    await put(manifestKey(target, id), '{"truncated":');
    await put(manifestKey(other, id), JSON.stringify(sampleManifest(other, id)));
    const r = await cli('inspect', id);
    expect(r.code, r.err).toBe(EXIT.ok);
    expect(r.out).toContain(`${other}/${id}`);
    expect(r.err).toMatch(new RegExp(`warning: .*${manifestKey(target, id)}.*not valid JSON`));
  });
});
