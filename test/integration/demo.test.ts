import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditReport } from '../../core/report/audit.js';
import { scaled } from '../../harness/time-scale.js';
import { type DemoRun, startDemo, stopDemo } from '../helpers/demo.js';
import { testTempDir } from '../helpers/temp.js';

// The demo's fast look (no Infrahub: sample data and an API stand-in) keeps working; the real demo
// (npm run demo) is tested in test/e2e/demo.test.ts.
describe('npm run demo -- --quick', () => {
  let run: DemoRun | undefined;
  // A demo still running when the test ends (its time limit) is stopped: on SIGTERM it stops the
  // servers it started.
  afterEach(() => stopDemo(run));

  it(
    'backs up real local databases through the locally run state machine, verifies and restore-verifies them',
    async () => {
      const reportDir = testTempDir('demo-report-');
      run = startDemo(['--quick', '--out', reportDir]);
      const { code, out } = await run.done;
      expect(code, out).toBe(0);
      expect(out).toMatch(
        /manifest written last: s3:\/\/infrahub-backups-demo\/infrahub-demo\/infrahub_backup_\d{8}_\d{6}\/backup_information\.json/,
      );
      expect(out).toMatch(/8 files, all SHA-256 match/);
      // Restore-verified by the drill state machine, into disposable databases, with its recovery time.
      expect(out).toMatch(
        /Restore drill of infrahub-demo from infrahub_backup_\d{8}_\d{6} passed in \d+ s \(recovery time \d+(\.\d+)? s\)/,
      );
      expect(out).toMatch(
        /PostgreSQL: 4500 rows and Neo4j: 602 nodes, 601 relationships restored from S3, equal to the backup's counts/,
      );
      // The backup ran through the synthesized state machine: its states, in order.
      const states = [...out.matchAll(/^ +\d+\.\d s {2}(\w+)$/gm)].map((m) => m[1]);
      expect(states.slice(-3)).toEqual(['PlanDrill', 'RunDrill', 'DrillReport']);
      states.splice(-3);
      // The fleet's Distributed Map (BackupTargets) runs the target as a child execution.
      expect(states.slice(0, 3)).toEqual(['Plan', 'BackupTargets', 'AcquireLock']);
      const order = ['AcquireLock', 'Preflight', 'WriteManifest', 'ReleaseLock', 'NotifySuccess', 'Report'];
      expect(order.map((s) => states.indexOf(s))).toEqual(
        [...order.map((s) => states.indexOf(s))].sort((a, b) => a - b),
      );
      expect(states.at(-1)).toBe('Report');
      expect(states).toEqual(
        expect.arrayContaining([
          ...order,
          'CountNeo4j',
          'StopDbms',
          'DumpNeo4j',
          'StartDbms',
          'DumpPostgres',
          'CopyArtifacts',
        ]),
      );
      expect(out).toMatch(/infrahub_backup_\d{8}_\d{6}: all 1 target\(s\) backed up/);
      expect(out).toMatch(
        /Demo complete: backed up through the state machine, verified and restore-verified\./,
      );
      // Issue 18, item 4: at its end the demo writes the audit report of its bucket and says where.
      expect(out).toContain(`   report: ${join(reportDir, 'report.html')}\n`);
      expect(out).toContain(`   data:   ${join(reportDir, 'report.json')}\n`);
      const report = JSON.parse(readFileSync(join(reportDir, 'report.json'), 'utf8')) as AuditReport;
      expect(report.counts).toMatchObject({
        backups: 1,
        complete: 1,
        drills: 1,
        drillsPassed: 1,
        failures: 0,
      });
      expect(report.drills[0]).toMatchObject({ objectiveSeconds: 14_400, objectiveSource: 'report' });
      expect(report.policy).toMatchObject({
        source: 'config',
        rtoMinutes: 240,
        file: join(reportDir, 'deployment-config.json'),
      });
      const html = readFileSync(join(reportDir, 'report.html'), 'utf8');
      expect(html.match(/<circle class="point size"/g)).toHaveLength(1);
      expect(html.match(/<circle class="point recovery/g)).toHaveLength(1);
      // About 3 min on a quiet 2-core machine (README, Quick start): room for two- to three-fold load.
    },
    scaled(600_000),
  );
});
