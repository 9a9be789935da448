/** `infrahub-backup export`: a backup written as infrahub-backup's tarball. */
import type { Command } from 'commander';
import { backupIdArgument, backupOf, type CommandContext, storage } from '../context.js';
import { exportBackup } from '../ops/tarball.js';
import { mib, transferProgress } from '../output.js';

/** Adds the `export` command to `program`. */
export function registerExport(program: Command, ctx: CommandContext): void {
  const { out, err } = ctx;
  program
    .command('export')
    .description(
      "writes a backup as infrahub-backup's tarball: infrahub_backup_YYYYMMDD_HHMMSS.tar.gz, entries under backup/",
    )
    .argument('<backup-id>', 'infrahub_backup_YYYYMMDD_HHMMSS', backupIdArgument)
    .option('--target <name>', 'the target (needed only when several hold this id)')
    .option('--out <dir>', 'where to write the archive', '.')
    .addHelpText(
      'after',
      '\nExamples:\n  infrahub-backup export infrahub_backup_20261121_020000 --out /srv/exports\n  infrahub-backup --json export infrahub_backup_20261121_020000 --target infrahub-prod',
    )
    .action(async (backupId: string, options: { target?: string; out: string }) => {
      const s = ctx.settings();
      const st = storage(s);
      const { target, manifest } = await backupOf(s, st, backupId, options.target, err);
      const result = await exportBackup(
        st.s3,
        st.bucket,
        target,
        manifest,
        options.out,
        transferProgress(err),
      );
      if (s.json) return out(JSON.stringify({ target, backupId, ...result }, null, 2));
      out(
        `${result.file}: ${result.files} files, ${mib(result.bytes)} before compression, every checksum checked`,
      );
    });
}
