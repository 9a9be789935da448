/**
 * The runner bundle (dist/runner/runner.mjs, what --local and the image run) writes JSON log lines on
 * standard error from its first line: on Node 20 the AWS SDK would otherwise print its plain-text
 * NodeVersionSupportWarning when the first client is made (issue 17, item 6). The bundle is built
 * here into a temporary folder and run with an environment that does not disable the warning, its
 * AWS endpoint a closed port of 127.0.0.1 and its PostgreSQL a closed port it waits 2 s for, so it ends
 * on its own with DatabaseUnreachable; the test reads all it wrote on standard error (no time window that a
 * slow machine could pass empty): JSON log lines from the first, the runner's plain one-line summary
 * of its failure among them, and no SDK warning.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildRunner } from '../../containers/runner/build.js';
import { scaled } from '../../harness/time-scale.js';

describe('the runner bundle', () => {
  const work = mkdtempSync(join(tmpdir(), 'runner-bundle-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it(
    'writes JSON on standard error from its first line: no SDK Node version warning',
    async () => {
      const bundle = join(work, 'runner.mjs');
      await buildRunner(bundle);
      const closed = 'http://127.0.0.1:1';
      const child = spawn(process.execPath, [bundle, 'backup-postgres'], {
        // Only what the runner needs to make its S3 client; no AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED.
        env: {
          PATH: '/usr/bin:/bin',
          HOME: work,
          TARGET: 'infrahub-lab',
          BACKUP_ID: 'infrahub_backup_20261121_020000',
          BACKUP_BUCKET: 'backups-runner-bundle',
          PGHOST: '127.0.0.1',
          PGPORT: '1',
          PGUSER: 'u',
          PGPASSWORD: 'p',
          PG_READY_TIMEOUT_SECONDS: '2',
          AWS_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: 'test',
          AWS_SECRET_ACCESS_KEY: 'test',
          AWS_ENDPOINT_URL: closed,
          S3_ENDPOINT: closed,
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const stderr = await new Promise<string>((resolve, reject) => {
        let text = '';
        child.stderr.on('data', (chunk: Buffer) => {
          text += chunk.toString('utf8');
        });
        child.on('error', reject);
        child.on('close', () => resolve(text));
      });
      expect(stderr).not.toMatch(/NodeVersionSupportWarning/);
      const lines = stderr.split('\n').filter((line) => line.trim() !== '');
      expect(lines.length, stderr).toBeGreaterThan(0);
      // JSON log lines from the first, and the runner's one plain summary of its failure
      // ("<ErrorName>: <message>").
      const plain = lines.filter((line) => !line.startsWith('{'));
      expect(plain).toEqual([expect.stringMatching(/^DatabaseUnreachable: /)]);
      expect(JSON.parse(lines[0] ?? ''), lines[0]).toHaveProperty('level');
      for (const line of lines.filter((l) => l.startsWith('{')))
        expect(JSON.parse(line), line).toHaveProperty('level');
    },
    scaled(120_000),
  );
});
