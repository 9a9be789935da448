/**
 * Issue 18, item 3: reading S3's x-amz-restore header (core/backup/thaw.ts restoreState), which moto
 * never sends as "in progress" (it restores at once), and the refusal's wording for objects in both
 * archive classes.
 */

import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import {
  describeArchived,
  restoreObjectCommand,
  restoreState,
  retrievalTime,
  thawObjects,
} from '../../core/backup/thaw.js';

describe('restoreState', () => {
  it.each([
    [undefined, { state: 'not-restored' }],
    ['ongoing-request="true"', { state: 'in-progress' }],
    [
      'ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"',
      { state: 'restored', expires: '2012-12-21T00:00:00.000Z' },
    ],
    ['ongoing-request="false"', { state: 'restored' }],
  ] as const)('%s', (header, expected) => {
    expect(restoreState(header)).toEqual(expected);
  });
});

describe('describeArchived', () => {
  it('names both classes, counts those being restored, names at most 5 keys, and gives both commands', () => {
    const blocked = Array.from({ length: 7 }, (_, i) => ({
      key: `lab/infrahub_backup_20261101_020000/artifacts/f${i}`,
      versionId: `v${i}`,
      storageClass: i < 6 ? 'GLACIER' : 'DEEP_ARCHIVE',
      state: i === 0 ? ('in-progress' as const) : ('not-restored' as const),
    }));
    const text = describeArchived('bucket', 'lab', 'infrahub_backup_20261101_020000', blocked);
    expect(text).toMatch(
      /^7 object\(s\) of backup infrahub_backup_20261101_020000 of lab are in GLACIER and DEEP_ARCHIVE \(archived by retention.coldStorage\) and cannot be read until restored \(1 being restored now\): lab\/infrahub_backup_20261101_020000\/artifacts\/f0 \(GLACIER, being restored\), .*f4 \(GLACIER, not restored\), and 2 more\. /,
    );
    expect(text).toContain(
      'infrahub-backup thaw infrahub_backup_20261101_020000 --target lab --days 7 --tier Standard',
    );
    expect(restoreObjectCommand('bucket', blocked[0] as (typeof blocked)[0], 2, 'Bulk')).toBe(
      `aws s3api restore-object --bucket bucket --key lab/infrahub_backup_20261101_020000/artifacts/f0 --version-id v0 --restore-request '{"Days":2,"GlacierJobParameters":{"Tier":"Bulk"}}'`,
    );
  });
});

describe('thawObjects', () => {
  it('refuses the Expedited tier for DEEP_ARCHIVE objects before any request (S3 offers it for GLACIER only)', async () => {
    const sent: unknown[] = [];
    const s3 = { send: async (command: unknown) => sent.push(command) } as unknown as S3Client;
    const objects = [
      { key: 'lab/infrahub_backup_20261101_020000/artifacts/a', versionId: 'v1', storageClass: 'GLACIER' },
      {
        key: 'lab/infrahub_backup_20261101_020000/artifacts/b',
        versionId: 'v2',
        storageClass: 'DEEP_ARCHIVE',
      },
    ];
    await expect(thawObjects(s3, 'bucket', objects, { days: 2, tier: 'Expedited' })).rejects.toMatchObject({
      name: 'InvalidInput',
      message: expect.stringContaining(
        '--tier Expedited: 1 of the 2 archived object(s) are in DEEP_ARCHIVE, which S3 restores only at the Standard (within 12 hours) or Bulk (within 48 hours) tier',
      ),
    });
    expect(sent).toEqual([]);
  });
});

describe('retrievalTime', () => {
  it("gives the chosen tier's time for each class, and says when a class has no such tier", () => {
    // Review of issue 18, item 3: the 'not ready yet' line gave Standard's times whatever the tier.
    expect(retrievalTime('Standard', ['GLACIER', 'DEEP_ARCHIVE'])).toBe(
      'GLACIER 3-5 hours, DEEP_ARCHIVE within 12 hours',
    );
    expect(retrievalTime('Bulk', ['GLACIER', 'DEEP_ARCHIVE'])).toBe(
      'GLACIER 5-12 hours, DEEP_ARCHIVE within 48 hours',
    );
    expect(retrievalTime('Expedited', ['GLACIER'])).toBe('GLACIER 1-5 minutes');
    expect(retrievalTime('Expedited', ['DEEP_ARCHIVE'])).toBe('DEEP_ARCHIVE: no Expedited retrieval');
  });
});
