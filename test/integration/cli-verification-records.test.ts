import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, run } from '../../cli/infrahub-backup.js';
import { VERIFIED_ROOT } from '../../cli/ops/catalog.js';
import { manifestKey } from '../../core/backup/layout.js';
import { sampleManifest } from '../helpers/manifest.js';
import { useLocalS3 } from '../helpers/s3.js';

const Bucket = 'backups-cli-verification-records';
const target = 'infrahub-lab';
const ids = [
  'infrahub_backup_20261121_020000',
  'infrahub_backup_20261122_020000',
  'infrahub_backup_20261123_020000',
];

// Issue 12 review, finding 5: one bad `.verified/` record (truncated JSON, `{}`) must not break `list`
// for the whole bucket: it is skipped with a warning naming its key, the backup listed as never verified.
describe('operator CLI list: unreadable verification records', () => {
  const local = useLocalS3(Bucket);
  const saved = { ...process.env };
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

  beforeAll(async () => {
    Object.assign(process.env, local.server.env());
    for (const id of ids) await put(manifestKey(target, id), JSON.stringify(sampleManifest(target, id)));
  });
  afterAll(() => {
    process.env = saved;
  });

  it('skips a truncated record and an empty object with a warning naming each key; the rest is listed', async () => {
    const [cut, empty, good] = ids as [string, string, string];
    await put(`${VERIFIED_ROOT}${target}/${cut}.json`, '{"verifiedAt": "2026-');
    await put(`${VERIFIED_ROOT}${target}/${empty}.json`, '{}');
    await put(
      `${VERIFIED_ROOT}${target}/${good}.json`,
      JSON.stringify({
        target,
        backupId: good,
        verifiedAt: '2026-11-23T03:00:00.000Z',
        ok: true,
        deep: false,
        files: 1,
        problems: 0,
      }),
    );
    const r = await cli('list');
    expect(r.code, r.err).toBe(EXIT.ok);
    expect(r.out).toMatch(new RegExp(`${cut} .* complete .*never verified`));
    expect(r.out).toMatch(new RegExp(`${empty} .* complete .*never verified`));
    expect(r.out).toMatch(new RegExp(`${good} .* complete .*verified 2026-11-23 03:00 ok`));
    expect(r.err).toMatch(
      new RegExp(
        `warning: verification record s3://${Bucket}/\\.verified/${target}/${cut}\\.json skipped \\(not valid JSON`,
      ),
    );
    expect(r.err).toMatch(
      new RegExp(
        `warning: verification record s3://${Bucket}/\\.verified/${target}/${empty}\\.json skipped \\(target: .*verifiedAt: `,
      ),
    );
    expect(r.err).not.toMatch(/ZodError|SyntaxError/);
    const json = await cli('--json', 'list');
    expect(json.code, json.err).toBe(EXIT.ok);
    expect((JSON.parse(json.out) as unknown[]).length).toBe(3);
  });
});
