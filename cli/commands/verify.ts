/** `infrahub-backup verify`: a backup checked against its manifest (--deep: every byte downloaded). */
import type { Command } from 'commander';
import { listProblems } from '../../core/backup/manifest.js';
import { describeProblems, describeProof, verifyAgainst } from '../../core/backup/verify.js';
import { backupIdArgument, backupOf, CliError, type CommandContext, EXIT, storage } from '../context.js';
import { recordVerification } from '../ops/catalog.js';
import { transferProgress } from '../output.js';

/** Adds the `verify` command to `program`; it ends with EXIT.failed when the backup has problems. */
export function registerVerify(program: Command, ctx: CommandContext): void {
  const { out, err } = ctx;
  program
    .command('verify')
    .description(
      "checks a backup against its manifest: sizes, S3's own checksums and version ids (--deep: every byte)",
    )
    .argument('<backup-id>', 'infrahub_backup_YYYYMMDD_HHMMSS', backupIdArgument)
    .option('--target <name>', 'the target (needed only when several hold this id)')
    .option('--deep', 'download and hash every file instead of trusting S3 checksums')
    .addHelpText(
      'after',
      '\nExamples:\n  infrahub-backup verify infrahub_backup_20261121_020000\n  infrahub-backup verify infrahub_backup_20261121_020000 --deep --json',
    )
    .action(async (backupId: string, options: { target?: string; deep?: boolean }) => {
      const s = ctx.settings();
      const st = storage(s);
      const { target, manifest } = await backupOf(s, st, backupId, options.target, err);
      const shown = transferProgress(err);
      const report = await verifyAgainst(st.s3, st.bucket, target, backupId, manifest, {
        deep: options.deep === true,
        // Downloads are the long part of a deep verification: one progress line per file.
        onDownloaded: (f) =>
          shown({ phase: 'file', path: f.path, bytes: f.bytes, done: f.downloaded, total: f.files }),
      });
      await recordVerification(st.s3, st.bucket, report, options.deep === true);
      if (s.json) out(JSON.stringify(report, null, 2));
      else if (report.ok)
        out(
          `${target}/${backupId}: ${report.files} files match the manifest (${options.deep ? `${report.downloaded} downloaded and hashed` : 'S3 checksums, sizes and version ids; nothing downloaded'})\n${describeProof(
            report,
          )
            .map((l) => `  ${l}`)
            .join('\n')}`,
        );
      else
        out(
          `${target}/${backupId}: ${report.problems.length} problem(s)\n${listProblems(describeProblems(report), 50)}`,
        );
      if (!report.ok) throw new CliError('', EXIT.failed);
    });
}
