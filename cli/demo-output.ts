/**
 * What both demos print: step headings, sizes and the Task states of a locally run execution; and
 * the audit report both write into their output folder at their end.
 */

import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { DeploymentConfig } from '../core/config/schema.js';
import { formatBytes } from '../core/format.js';
import { parsePeriod } from '../core/report/audit.js';
import type { ExecutionEvent } from './local/state-machine.js';
import { writeAuditReport } from './ops/audit-report.js';

/** Prints a step's heading. */
export const step = (text: string): void => console.log(`\n== ${text}`);

/** A byte count for people (core/format.ts formatBytes): "512 B", "3.4 KiB", "6.1 MiB". */
export const kib = formatBytes;

/** Prints each Task state as an execution enters it (and any that fails), with the seconds since `t0` (ms). */
export function printStates(t0: number): (event: ExecutionEvent) => void {
  const seconds = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s`;
  return (event: ExecutionEvent) => {
    const state = event.state as { name: string; type: string } | undefined;
    if (event.type === 'StateEntered' && state?.type === 'Task')
      console.log(`   ${seconds()}  ${state.name}`);
    if (event.type === 'StateFailed' && state) console.log(`   ${seconds()}  ${state.name} failed`);
  };
}

/** The configuration file the demo's report names as its policy, written beside the report. */
export const DEMO_CONFIG_FILE = 'deployment-config.json';

/**
 * The demo's last step: the audit report of its bucket (what `infrahub-backup report` writes, for the
 * last 90 days: this run's backups, restores and drills) into `dir`, with the configuration the demo
 * ran with written beside it as the policy in force (`deployment-config.json`). Prints the paths.
 * @returns the absolute path of report.html
 * @throws StorageError when the local S3 cannot be read; the file system's error when `dir` cannot be written
 */
export async function writeDemoReport(
  s3: S3Client,
  bucket: string,
  config: DeploymentConfig,
  dir: string,
): Promise<string> {
  step(`Audit report of s3://${bucket} (infrahub-backup report) into ${resolve(dir)}`);
  const { html, json, report } = await writeAuditReport(s3, bucket, {
    period: parsePeriod({}),
    config: { config, file: join(resolve(dir), DEMO_CONFIG_FILE) },
    outDir: dir,
    warn: (line) => console.log(`   ${line}`),
  });
  writeFileSync(join(resolve(dir), DEMO_CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
  const c = report.counts;
  console.log(
    `   ${c.backups} backup(s) (${c.complete} complete, ${formatBytes(c.completeBytes)}), ${c.drills} drill(s) (${c.drillsWithinObjective} within the recovery time objective of ${config.rtoMinutes} min), ${c.restores} restore(s), ${c.failures} failure(s)`,
  );
  console.log(`   report: ${html}`);
  console.log(`   data:   ${json}`);
  return html;
}
