/**
 * The runner bundle (dist/runner/runner.mjs, what --local and the image run) writes JSON log lines on
 * standard error from its first line: on Node 20 the AWS SDK would otherwise print its plain-text
 * NodeVersionSupportWarning when the first client is made (issue 17, item 6). The bundle is built
 * here into a temporary folder and run with an environment that does not disable the warning, its
 * AWS endpoint a closed port of 127.0.0.1; the test stops it at its first standard error line or after
 * 10 s (the SDK's warning comes within a second of the start; the runner's own first line, after its
 * retries, much later).
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
          AWS_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: 'test',
          AWS_SECRET_ACCESS_KEY: 'test',
          AWS_ENDPOINT_URL: closed,
          S3_ENDPOINT: closed,
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const first = await new Promise<string>((resolve, reject) => {
        let text = '';
        child.stderr.on('data', (chunk: Buffer) => {
          text += chunk.toString('utf8');
          const end = text.indexOf('\n');
          if (end >= 0) resolve(text.slice(0, end));
        });
        child.on('error', reject);
        child.on('exit', () => resolve(text));
        setTimeout(() => resolve(text), 10_000);
      }).finally(() => child.kill('SIGKILL'));
      expect(first).not.toMatch(/NodeVersionSupportWarning/);
      if (first) expect(JSON.parse(first), first).toHaveProperty('level');
    },
    scaled(120_000),
  );
});
