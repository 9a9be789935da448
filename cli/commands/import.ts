/** `infrahub-backup import`: an infrahub-backup tarball stored as a backup of a configured target. */
import { statSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError, type CommandContext, checkTargets, EXIT, storage } from '../context.js';
import { importTarball } from '../ops/tarball.js';
import { mib, transferProgress } from '../output.js';

/**
 * Adds the `import` command to `program`; it ends with EXIT.usage without a configuration, for a
 * malformed target name and for an archive path that is not a readable file (absent, a folder), and
 * EXIT.notFound for a target the configuration does not name.
 */
export function registerImport(program: Command, ctx: CommandContext): void {
  const { out, err } = ctx;
  program
    .command('import')
    .description('stores an infrahub-backup tarball as a backup of a target, after checking every checksum')
    .argument('<tarball>', 'infrahub_backup_YYYYMMDD_HHMMSS.tar.gz')
    .requiredOption('--target <name>', 'the target it becomes a backup of')
    .addHelpText(
      'after',
      '\nExamples:\n  infrahub-backup --config deployment.json import ./infrahub_backup_20261121_020000.tar.gz --target infrahub-lab',
    )
    .action(async (tarball: string, options: { target: string }) => {
      const s = ctx.settings();
      const st = storage(s);
      if (!s.config) {
        throw new CliError(
          'import needs the deployment configuration (--config or INFRAHUB_BACKUP_CONFIG): the target must be configured, and its retention policy classifies the backup',
          EXIT.usage,
        );
      }
      checkTargets(s, [options.target]);
      // Before its name is read as a backup id: an absent file is a wrong argument, said as such.
      const file = (() => {
        try {
          return statSync(tarball);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          throw new CliError(
            code === 'ENOENT'
              ? `${tarball}: no such file (the archive to import)`
              : `${tarball}: cannot be read (${code ?? String(e)})`,
            EXIT.usage,
          );
        }
      })();
      if (!file.isFile()) throw new CliError(`${tarball}: not a file (the archive to import)`, EXIT.usage);
      const result = await importTarball(st.s3, st.bucket, tarball, options.target, {
        retention: s.config.retention,
        onProgress: transferProgress(err),
      });
      if (s.json) return out(JSON.stringify(result, null, 2));
      out(
        `${result.target}/${result.backupId}: ${result.files} files, ${mib(result.bytes)}, every checksum matches; retention ${result.retentionClass ?? 'pending'}`,
      );
    });
}
