import type { BackupSubcommand, RestoreSubcommand } from '../runner-subcommands.js';

/**
 * The backup state machine's runner states and the runner subcommand each one runs
 * (infra/constructs/backup-state-machine.ts builds its ECS states from it; the failure notice names
 * the subcommand of a failed runner state from it, core/notices/notify.ts). A runner state's failure
 * arrives with the runner's error name and message (SendTaskFailure), no longer with the ECS task's
 * description, which named its command.
 */
export const BACKUP_RUNNER_STEPS = {
  CountNeo4j: 'count-neo4j',
  DumpNeo4j: 'backup-neo4j',
  BackupNeo4j: 'backup-neo4j',
  DumpPostgres: 'backup-postgres',
  CopyArtifacts: 'backup-artifacts',
} as const satisfies Record<string, BackupSubcommand>;

/** The restore and drill state machines' runner states (infra/constructs/restore-state-machine.ts). */
export const RESTORE_RUNNER_STEPS = {
  RestoreNeo4j: 'restore-neo4j',
  RestoreNeo4jOnline: 'restore-neo4j',
  ValidateNeo4j: 'validate-neo4j',
  ValidateNeo4jOnline: 'validate-neo4j',
  RestorePostgres: 'restore-postgres',
  RestoreArtifacts: 'restore-artifacts',
  RunDrill: 'drill',
} as const satisfies Record<string, RestoreSubcommand>;

const COMMANDS: Record<string, string> = { ...BACKUP_RUNNER_STEPS, ...RESTORE_RUNNER_STEPS };

/** The runner subcommand of a backup, restore or drill state, if it is a runner state. */
export function runnerCommandOf(step: string): string | undefined {
  return Object.hasOwn(COMMANDS, step) ? COMMANDS[step] : undefined;
}
