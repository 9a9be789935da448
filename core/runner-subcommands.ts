/**
 * The runner's subcommands: what containers/runner/src/main.ts runs, one per ECS state of the
 * backup, restore and drill state machines. The one list of their names: the state machines' step
 * maps (core/backup/runner-steps.ts), the steps' timeouts keys (core/config/timeouts.ts), the restore
 * steps' reports (core/restore/steps.ts), the runner's dispatch and its heartbeat rules are typed by
 * it, so a misspelt or missing subcommand fails the build.
 */

/** Backups: each writes one component of a backup (count-neo4j: the graph's counts). */
export const BACKUP_SUBCOMMANDS = [
  'backup-postgres',
  'backup-neo4j',
  'count-neo4j',
  'backup-artifacts',
] as const;
export type BackupSubcommand = (typeof BACKUP_SUBCOMMANDS)[number];

/** Restores and drills: each writes its report under `.restores/<target>/<restore id>/<step>.json`. */
export const RESTORE_SUBCOMMANDS = [
  'restore-postgres',
  'restore-neo4j',
  'validate-neo4j',
  'restore-artifacts',
  'drill',
] as const;
export type RestoreSubcommand = (typeof RESTORE_SUBCOMMANDS)[number];

export type RunnerSubcommand = BackupSubcommand | RestoreSubcommand;
