/** `infrahub-backup inspect`: a backup's manifest, readable. */
import type { Command } from 'commander';
import { backupPrefix } from '../../core/backup/layout.js';
import { backupIdArgument, backupOf, type CommandContext, storage } from '../context.js';
import { mib } from '../output.js';

/** Adds the `inspect` command to `program`. */
export function registerInspect(program: Command, ctx: CommandContext): void {
  const { out, err } = ctx;
  program
    .command('inspect')
    .description("a backup's manifest (backup_information.json), readable")
    .argument('<backup-id>', 'infrahub_backup_YYYYMMDD_HHMMSS', backupIdArgument)
    .option('--target <name>', 'the target (needed only when several hold this id)')
    .addHelpText(
      'after',
      '\nExamples:\n  infrahub-backup inspect infrahub_backup_20261121_020000 --target infrahub-prod\n  infrahub-backup inspect infrahub_backup_20261121_020000 --json',
    )
    .action(async (backupId: string, options: { target?: string }) => {
      const s = ctx.settings();
      const st = storage(s);
      const { target, manifest } = await backupOf(s, st, backupId, options.target, err);
      if (s.json) return out(JSON.stringify(manifest, null, 2));
      out(`${target}/${backupId}  s3://${st.bucket}/${backupPrefix(target, backupId)}`);
      out(
        `  created      ${manifest.created_at}${manifest.completed_at ? `, completed ${manifest.completed_at}` : ''}`,
      );
      out(`  components   ${manifest.components.join(', ')}`);
      out(`  infrahub     ${manifest.infrahub_version}`);
      if (manifest.versions?.neo4j)
        out(
          `  neo4j        ${manifest.neo4j_edition ?? ''} ${manifest.versions.neo4j.server ?? manifest.versions.neo4j.tool}`,
        );
      if (manifest.versions?.postgres)
        out(
          `  postgres     ${manifest.versions.postgres.server} (pg_dump ${manifest.versions.postgres.tool})`,
        );
      if (manifest.retention_class) out(`  retention    ${manifest.retention_class}`);
      if (manifest.forced) out('  forced       yes: the preflight gate was skipped');
      for (const [db, c] of Object.entries(manifest.counts?.neo4j ?? {}))
        out(`  graph        ${db}: ${c.nodes} nodes, ${c.relationships} relationships`);
      if (manifest.counts?.postgres) {
        const rows = Object.values(manifest.counts.postgres.tables).reduce((a, b) => a + b, 0);
        out(
          `  task db      ${manifest.counts.postgres.database}: ${Object.keys(manifest.counts.postgres.tables).length} tables, ${rows} rows`,
        );
      }
      out(`  files        ${Object.keys(manifest.checksums).length}`);
      for (const [path, sha256] of Object.entries(manifest.checksums))
        out(`    ${path.padEnd(48)} ${mib(manifest.sizes?.[path] ?? 0).padStart(10)}  sha256 ${sha256}`);
    });
}
