/**
 * Writes the audit report (core/report/) into a folder: `report.html`, one self-contained page, and
 * `report.json` beside it, the same data in bytes and seconds. Used by `infrahub-backup report` and
 * at the end of the demo. The targets, when none are named: every target with backups or restore
 * reports in the bucket, and every target the configuration names (one without any backup is
 * exactly what an auditor must see).
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { InvalidInputError } from '../../core/errors.js';
import { IDENTIFIER_KEYS, redactValue } from '../../core/redact.js';
import type { AuditPeriod, AuditReport } from '../../core/report/audit.js';
import { gatherAuditReport, listRestoreTargets } from '../../core/report/gather.js';
import { renderAuditHtml } from '../../core/report/html.js';
import { listTargets, readVerification } from './catalog.js';

export const REPORT_HTML = 'report.html';
export const REPORT_JSON = 'report.json';

export interface WriteAuditReportOptions {
  period: AuditPeriod;
  /** Only these targets; default: the bucket's and the configuration's (see the top of this file). */
  targets?: readonly string[] | undefined;
  /** The deployment configuration and its file: the policy in force. */
  config?: { config: DeploymentConfig; file: string } | undefined;
  /** The folder to write into; created when missing. */
  outDir: string;
  /** Warnings (an unreadable record skipped), one line each. */
  warn?: (line: string) => void;
  now?: Date;
}

/**
 * Refuses, before anything is read from S3, an --out that cannot become the report's folder: an
 * existing file, or a path under one. A missing folder is fine (writeAuditReport creates it), and
 * nothing is created here. Without this check `mkdir` failed with a raw EEXIST or ENOTDIR after
 * the whole bucket had been read.
 * @throws InvalidInputError ("report destination") naming --out and the path that is not a folder
 */
export function assertReportOutDir(outDir: string): void {
  let path = resolve(outDir);
  for (;;) {
    let info: ReturnType<typeof statSync>;
    try {
      info = statSync(path, { throwIfNoEntry: false });
    } catch (e) {
      // ENOTDIR: a part of the path above is a file; the loop reaches it.
      if ((e as NodeJS.ErrnoException).code !== 'ENOTDIR') throw e;
      info = undefined;
    }
    if (info) {
      if (info.isDirectory()) return;
      throw new InvalidInputError('report destination', [
        path === resolve(outDir)
          ? `--out ${outDir} is not a folder`
          : `--out ${outDir} is not a folder: ${path} is a file`,
      ]);
    }
    const parent = dirname(path);
    if (parent === path) return;
    path = parent;
  }
}

/** Identifiers kept as they are when the report's text is redacted. */
const KEEP = new Set([...IDENTIFIER_KEYS, 'restoreId', 'id', 'targets']);

/**
 * Gathers the report from the bucket (gatherAuditReport), redacts its text (core/redact.ts: a
 * safety net; the causes it quotes were redacted where they were recorded) and writes
 * `<outDir>/report.html` and `<outDir>/report.json`.
 * @returns the absolute paths written and the report
 * @throws StorageError when S3 cannot be listed or read; the file system's error when the folder
 *   cannot be created or written
 */
export async function writeAuditReport(
  s3: S3Client,
  bucket: string,
  options: WriteAuditReportOptions,
): Promise<{ html: string; json: string; report: AuditReport }> {
  const warn = options.warn ?? (() => undefined);
  const targets =
    options.targets ??
    [
      ...new Set([
        ...(await listTargets(s3, bucket)),
        ...(await listRestoreTargets(s3, bucket)),
        ...(options.config?.config.targets.map((t) => t.name) ?? []),
      ]),
    ].sort();
  const gathered = await gatherAuditReport(s3, bucket, {
    period: options.period,
    targets,
    config: options.config,
    warn,
    lastVerification: async (target, backupId) => {
      const v = await readVerification(s3, bucket, target, backupId, warn);
      return v && { verifiedAt: v.verifiedAt, ok: v.ok, deep: v.deep, problems: v.problems };
    },
    ...(options.now ? { now: options.now } : {}),
  });
  const report = redactValue(gathered, { keep: KEEP });
  const dir = resolve(options.outDir);
  mkdirSync(dir, { recursive: true });
  const html = join(dir, REPORT_HTML);
  const json = join(dir, REPORT_JSON);
  writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(html, renderAuditHtml(report));
  return { html, json, report };
}
