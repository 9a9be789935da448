/** `infrahub-backup export`: a backup written as infrahub-backup's tarball, whole or redacted (`--redact`). */
import { tmpdir } from 'node:os';
import type { Command } from 'commander';
import { InvalidInputError } from '../../core/errors.js';
import { backupIdArgument, backupOf, type CommandContext, storage } from '../context.js';
import { exportRedacted, type RedactedExportResult } from '../ops/redacted-export.js';
import { exportBackup } from '../ops/tarball.js';
import { mib, transferProgress } from '../output.js';

interface ExportOptions {
  target?: string;
  out: string;
  redact?: boolean;
  neo4jHome?: string;
  workDir?: string;
}

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
    .option(
      '--redact',
      'a copy to share with support: Neo4j values replaced, the task database, artifacts and Neo4j users left out; the bucket and the deployment are not touched',
    )
    .option(
      '--neo4j-home <dir>',
      'with --redact: a Neo4j installation (bin/neo4j, bin/neo4j-admin; of the backup version or later) for the disposable servers (default: NEO4J_HOME)',
    )
    .option(
      '--work-dir <dir>',
      'with --redact: where the scratch folder goes (default: the system temp folder)',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  infrahub-backup export infrahub_backup_20261121_020000 --out /srv/exports\n  infrahub-backup --json export infrahub_backup_20261121_020000 --target infrahub-prod\n  infrahub-backup export infrahub_backup_20261121_020000 --redact --neo4j-home /opt/neo4j --out /srv/support',
    )
    .action(async (backupId: string, options: ExportOptions) => {
      // Flags are checked before any AWS call.
      const neo4jHome = options.neo4jHome ?? process.env.NEO4J_HOME;
      if (!options.redact && (options.neo4jHome || options.workDir))
        throw new InvalidInputError('export', [
          `${options.neo4jHome ? '--neo4j-home' : '--work-dir'} is for --redact only`,
        ]);
      if (options.redact && !neo4jHome)
        throw new InvalidInputError('export --redact', [
          "--neo4j-home (or NEO4J_HOME) is needed: a redacted export loads the backup into disposable Neo4j servers of its own, started from a Neo4j installation (Community, the backup's version or later, with its Java) that holds bin/neo4j and bin/neo4j-admin",
        ]);
      const s = ctx.settings();
      const st = storage(s);
      const { target, manifest } = await backupOf(s, st, backupId, options.target, err);
      if (options.redact && neo4jHome) {
        const result = await exportRedacted(st.s3, st.bucket, target, manifest, options.out, {
          neo4jHome,
          workDir: options.workDir ?? tmpdir(),
          onProgress: (line) => err(line),
        });
        if (s.json) return out(JSON.stringify({ target, backupId, redacted: true, ...result }, null, 2));
        for (const line of redactedSummary(target, backupId, result)) out(line);
        return;
      }
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

/** What a redacted export says it wrote, replaced and left out (one line each). */
export function redactedSummary(target: string, backupId: string, result: RedactedExportResult): string[] {
  const replaced = (r: RedactedExportResult['databases'][number]) =>
    Object.values(r.redactedProperties).reduce((n, c) => n + c, 0);
  return [
    `${result.file}: REDACTED export of ${target}/${backupId} (manifest "redacted": true)`,
    ...result.databases.map(
      (d) =>
        `  database/${d.database}.dump: ${d.nodes} nodes and ${d.relationships} relationships, as in the backup; ${replaced(d)} values replaced, the schema and Infrahub's structure kept`,
    ),
    ...result.leftOut.map((l) => `  left out: ${l.path}: ${l.reason}`),
  ];
}
