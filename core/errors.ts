/**
 * Errors with a stable `name`. The state machine's Retry/Catch, the runner's exit codes and the
 * CLI match on these names, so they are declared once here and imported everywhere.
 */
export const ErrorNames = {
  /** The deployment configuration is unreadable or invalid. */
  ConfigError: 'ConfigError',
  /** An execution input or Lambda event does not match its schema. Retrying cannot fix it. */
  InvalidInput: 'InvalidInput',
  /** A runner or Lambda started with a missing or malformed environment variable. Retrying cannot fix it. */
  RunnerConfigError: 'RunnerConfigError',
  /** A database or copy tool exited non-zero or was killed; its output was not kept. */
  ToolFailed: 'ToolFailed',
  /** The tools in the runner cannot work with the server (pg_dump older than the server, ...). */
  IncompatibleTool: 'IncompatibleTool',
  /** Neo4j Community must be stopped for an offline dump, and it is running. */
  Neo4jDatabaseInUse: 'Neo4jDatabaseInUse',
  /** An S3 upload or copy failed; any multipart upload was aborted. Often transient. */
  StorageError: 'StorageError',
  /** A component's result is missing or malformed, so no manifest can be written. */
  IncompleteBackup: 'IncompleteBackup',
  /** A backup's manifest is missing, unreadable or not one this tool understands. */
  ManifestError: 'ManifestError',
  /** Infrahub still runs tasks after the preflight gate's bound; the backup would not be consistent. */
  InfrahubBusy: 'InfrahubBusy',
  /** Infrahub's API could not be reached (network, DNS, timeout). Often transient. */
  InfrahubUnreachable: 'InfrahubUnreachable',
  /** Infrahub's API answered with an error (bad token, rejected query). Retrying will not fix it. */
  InfrahubApiError: 'InfrahubApiError',
  /** Another execution holds the target's lock; two executions never work on one target at once. */
  TargetLocked: 'TargetLocked',
  /** The ECS service of a Community DBMS could not be stopped or started (missing, or too slow). */
  DbmsControl: 'DbmsControl',
  /** The runner could not connect to a database it backs up (network, DNS, refused, bad credentials). */
  DatabaseUnreachable: 'DatabaseUnreachable',
  /** A backup cannot be restored into a target: its files do not match its manifest, or versions or editions conflict. */
  IncompatibleBackup: 'IncompatibleBackup',
  /** After a restore, the target's counts differ from those recorded at backup time. */
  RestoreValidation: 'RestoreValidation',
  /** A notice could not be published to SNS or EventBridge. Often transient. */
  Notification: 'Notification',
  /** Path artifact storage holds an entry that is not a regular file (a symbolic link, a FIFO, ...): never silently left out. Retrying cannot fix it. */
  UnsupportedArtifact: 'UnsupportedArtifact',
  /** The runner's scratch space (RESTORE_WORK_DIR) has less free space than the files a restore must stage there. Retrying on the same task size cannot fix it. */
  InsufficientScratchSpace: 'InsufficientScratchSpace',
  /** A Secrets Manager secret is not in the shape its use needs (malformed JSON, a missing field); its content is never shown. Retrying cannot fix it. */
  SecretInvalid: 'SecretInvalid',
  /** A dump's bytes are not the format its tool writes (stray output mixed into the stream, truncated): it would not load, so it never becomes part of a complete backup. Retrying may help only if the cause was transient. */
  DumpFormat: 'DumpFormat',
  /** Infrahub's task API kept answering full pages past the preflight's page bound (or repeated a page): pagination that never ends. Retrying cannot fix it. */
  InfrahubPagination: 'InfrahubPagination',
  /** The runner met an error that has no name of ours (a library's failure nothing caught, a bug); the original name and message are kept in its message. */
  UnexpectedError: 'UnexpectedError',
  /** Another restore of the same PostgreSQL database is running on that server (its advisory lock is held). Retry once it has ended. */
  RestoreInProgress: 'RestoreInProgress',
  /** A PostgreSQL restore cannot complete as the connecting user (sessions it may not close, a database or owner role it may not take over): refused before any restore work. Retrying cannot fix it. */
  RestoreBlocked: 'RestoreBlocked',
  /** The runner was stopped by a signal (ECS sends SIGTERM when Step Functions stops the task: a timeout, an abort): its tools were ended, its uploads aborted. */
  Interrupted: 'Interrupted',
  /** A Neo4j Enterprise online backup wrote every database's artifact but reached only some cluster members, or neo4j-admin reported problems (exit 1: "succeeded but encountered problems such as some servers being uncontactable"): the artifacts are uploaded for inspection, the backup is not marked complete (no manifest). Retrying helps once every member answers. */
  Neo4jBackupDegraded: 'Neo4jBackupDegraded',
  /** A Neo4j Enterprise database seeded from the bucket did not come online on every member that hosts it (its statusMessage, or the bounded wait ran out), or the server cannot seed from S3 at all. Nothing after it ran: an alias is never moved to such a database. */
  Neo4jSeed: 'Neo4jSeed',
  /** The runner's work made no progress (no bytes moved, no tool output) for longer than the step's HeartbeatSeconds: its tools were stopped, its uploads aborted. Often a half-open connection; a new attempt may pass. */
  Stalled: 'Stalled',
  /** Step Functions refused the runner's heartbeat (TaskTimedOut, TaskDoesNotExist, InvalidToken): the state already ended (timed out, execution stopped), so the runner stopped its work; nobody waits for its result. */
  TaskAbandoned: 'TaskAbandoned',
  /** Step Functions accepted none of the runner's heartbeats for 3/4 of the step's HeartbeatSeconds (no route to its endpoint, an IAM denial, long throttling): the state fails with States.HeartbeatTimeout at HeartbeatSeconds and may start the step again, so the runner stopped its work first (tools ended, uploads aborted) rather than run beside the new task. A new attempt passes once the task reaches Step Functions. */
  HeartbeatNotAccepted: 'HeartbeatNotAccepted',
  /** A backup's files are in an archive storage class (S3 Glacier Flexible Retrieval or Deep Archive, moved there by retention.coldStorage) and not restored: S3 refuses to read them (InvalidObjectState) until each is restored with RestoreObject (`infrahub-backup thaw`), which takes hours. Retrying before that cannot help. */
  BackupArchived: 'BackupArchived',
  /** A Community backup with `neo4j.dumpFrom` "copy": the stopped store could not be copied to the task's disk or the copy is not the store (files, sizes or last committed transaction differ), or the dump of the copy failed after the runner had started the DBMS again (a new attempt would find the DBMS running and no copy: not retried). The message names the cause; the DBMS is started again either way. */
  Neo4jStoreCopy: 'Neo4jStoreCopy',
  /** A staged Community restore could not put its loaded stores in place of the target's, and could not move back every folder it had moved: the message names each folder to move back by hand. The DBMS must not start meanwhile (it would start without those databases' store or logs), so the restore state machine leaves it stopped and says so. Retrying cannot fix it. */
  Neo4jStoreSwap: 'Neo4jStoreSwap',
  /** A staged Community restore could not put its loaded stores in place (a rename failed: a failing or read-only volume, a folder in the way), and every folder it had moved was put back: the target's store is unchanged, the staged folders removed. Never followed by an in-place load, which would first delete the target's store on the same failing volume. Retrying helps once the cause in the message is fixed. */
  Neo4jStoreSwapUndone: 'Neo4jStoreSwapUndone',
} as const;

export type ErrorName = (typeof ErrorNames)[keyof typeof ErrorNames];

/**
 * The runner's errors a state machine retries with a new task (infra/constructs/runner-tasks.ts
 * runnerTransientRetry): also what a Community dump from a copy turns into Neo4jStoreCopy once the
 * DBMS runs again, since a new task would find it running.
 */
export const RUNNER_TRANSIENT_ERRORS: readonly ErrorName[] = [
  ErrorNames.StorageError,
  ErrorNames.DatabaseUnreachable,
  ErrorNames.Stalled,
  ErrorNames.HeartbeatNotAccepted,
];

/** Base class: sets `name` from the subclass so `error.name` survives serialisation. */
export abstract class NamedError extends Error {
  abstract override readonly name: ErrorName;
}

/** The deployment configuration is unreadable or invalid. `problems` names each field and reason. */
export class ConfigError extends NamedError {
  override readonly name = ErrorNames.ConfigError;
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`Invalid deployment configuration (${source}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export class InvalidInputError extends NamedError {
  override readonly name = ErrorNames.InvalidInput;
  constructor(
    readonly what: string,
    readonly problems: readonly string[],
  ) {
    super(`Invalid ${what}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export class RunnerConfigError extends NamedError {
  override readonly name = ErrorNames.RunnerConfigError;
  constructor(
    readonly problems: readonly string[],
    subject = 'runner',
  ) {
    super(`Invalid ${subject} environment:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export class ToolFailedError extends NamedError {
  override readonly name = ErrorNames.ToolFailed;
  constructor(
    readonly tool: string,
    readonly exit: { code: number | null; signal: NodeJS.Signals | null },
    readonly stderrTail: string,
  ) {
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
    super(`${tool} ${how}${stderrTail ? `: ${stderrTail}` : ''}`);
  }
}

export class IncompatibleToolError extends NamedError {
  override readonly name = ErrorNames.IncompatibleTool;
}

export class Neo4jDatabaseInUseError extends NamedError {
  override readonly name = ErrorNames.Neo4jDatabaseInUse;
  /** @param operation what needs the DBMS stopped: `dump` (a backup) or `load` (a restore) */
  constructor(
    readonly database: string,
    operation: 'dump' | 'load' = 'dump',
  ) {
    super(
      `Neo4j database "${database}" is in use: a Community ${operation} needs the DBMS stopped ` +
        `(stop Neo4j, or scale its service to zero, before the ${operation})`,
    );
  }
}

export class StorageError extends NamedError {
  override readonly name = ErrorNames.StorageError;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class IncompleteBackupError extends NamedError {
  override readonly name = ErrorNames.IncompleteBackup;
}

export class ManifestError extends NamedError {
  override readonly name = ErrorNames.ManifestError;
}

export class InfrahubBusyError extends NamedError {
  override readonly name = ErrorNames.InfrahubBusy;
}

export class InfrahubUnreachableError extends NamedError {
  override readonly name = ErrorNames.InfrahubUnreachable;
}

export class InfrahubApiError extends NamedError {
  override readonly name = ErrorNames.InfrahubApiError;
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export class TargetLockedError extends NamedError {
  override readonly name = ErrorNames.TargetLocked;
}

export class DbmsControlError extends NamedError {
  override readonly name = ErrorNames.DbmsControl;
}

export class NotificationError extends NamedError {
  override readonly name = ErrorNames.Notification;
}

export class DatabaseUnreachableError extends NamedError {
  override readonly name = ErrorNames.DatabaseUnreachable;
}

export class IncompatibleBackupError extends NamedError {
  override readonly name = ErrorNames.IncompatibleBackup;
}

export class RestoreValidationError extends NamedError {
  override readonly name = ErrorNames.RestoreValidation;
}

/** A seeded Neo4j Enterprise database is not online everywhere it is hosted, or cannot be seeded (ErrorNames.Neo4jSeed). */
export class Neo4jSeedError extends NamedError {
  override readonly name = ErrorNames.Neo4jSeed;
}

/**
 * An Enterprise online backup that is not complete although its artifacts exist: members of
 * `--from` did not answer, or neo4j-admin exited 1 after writing them (ErrorNames.Neo4jBackupDegraded).
 * The message names each database's source member, the unreachable members and says the backup is
 * not marked complete.
 */
export class Neo4jBackupDegradedError extends NamedError {
  override readonly name = ErrorNames.Neo4jBackupDegraded;
}

/** Path artifact storage holds entries a backup cannot capture as files; the message names each. */
export class UnsupportedArtifactError extends NamedError {
  override readonly name = ErrorNames.UnsupportedArtifact;
}

/** Too little free space where a restore stages verified downloads; the message names the folder, bytes needed and free. */
export class InsufficientScratchSpaceError extends NamedError {
  override readonly name = ErrorNames.InsufficientScratchSpace;
}

/** The stopped Community store could not be copied or dumped from its copy (ErrorNames.Neo4jStoreCopy); the message names the cause. */
export class Neo4jStoreCopyError extends NamedError {
  override readonly name = ErrorNames.Neo4jStoreCopy;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * A staged Community restore's swap failed. `restored` true (ErrorNames.Neo4jStoreSwapUndone): every
 * folder it moved is back in its place, the target unchanged; false (ErrorNames.Neo4jStoreSwap): the
 * message names each folder to move back, and the restore state machine leaves the DBMS stopped.
 */
export class Neo4jStoreSwapError extends NamedError {
  override readonly name: typeof ErrorNames.Neo4jStoreSwap | typeof ErrorNames.Neo4jStoreSwapUndone;
  constructor(
    message: string,
    readonly restored: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = restored ? ErrorNames.Neo4jStoreSwapUndone : ErrorNames.Neo4jStoreSwap;
  }
}

/** A secret is unreadable for its use: the message names the secret and the shape expected, never its content. */
export class SecretInvalidError extends NamedError {
  override readonly name = ErrorNames.SecretInvalid;
}

/** A dump is not in its tool's format (pg_restore cannot read it; a Neo4j dump without its header). Names the file and the problem. */
export class DumpFormatError extends NamedError {
  override readonly name = ErrorNames.DumpFormat;
}

/** Infrahub's task API answered more pages than the bound (preflight.maxTaskPages), or the same page again: named, never a timeout. */
export class InfrahubPaginationError extends NamedError {
  override readonly name = ErrorNames.InfrahubPagination;
}

/**
 * An error the runner did not expect, given a name so its record, exit code and notice say what
 * happened: the message starts with the original error's name (`TypeError: ...`, `error: terminating
 * connection ...`), and `origin` says where it was caught (`main`, `uncaughtException`, `unhandledRejection`).
 */
export class UnexpectedError extends NamedError {
  override readonly name = ErrorNames.UnexpectedError;
  constructor(
    readonly original: unknown,
    readonly origin = 'main',
  ) {
    const e = original instanceof Error ? original : new Error(String(original));
    super(`${e.name}: ${e.message}${origin === 'main' ? '' : ` (${origin})`}`, { cause: original });
  }
}

export class RestoreInProgressError extends NamedError {
  override readonly name = ErrorNames.RestoreInProgress;
}

export class RestoreBlockedError extends NamedError {
  override readonly name = ErrorNames.RestoreBlocked;
}

/**
 * Appends `sentence` to `error`'s message, after a full stop when the message has none, and returns
 * the same Error (its name, which decides the state machine's next state, is kept).
 */
export function appendSentence<E extends Error>(error: E, sentence: string): E {
  const message = error.message.trimEnd();
  error.message = `${message}${/[.!?]$/.test(message) ? ' ' : '. '}${sentence}`;
  return error;
}

/**
 * The runner received SIGTERM or SIGINT (an ECS task stop): the work was ended cleanly, its tools
 * stopped and its unfinished uploads aborted (no partial backup file is kept). What a restore step had
 * already changed in its target is appended by the runner (containers/runner/src/stop-guard.ts).
 */
export class InterruptedError extends NamedError {
  override readonly name = ErrorNames.Interrupted;
  constructor(readonly signal: NodeJS.Signals) {
    super(
      `the runner received ${signal} (the task was stopped: a Step Functions timeout or abort, or an operator) and ended its work: tools stopped, unfinished uploads aborted`,
    );
  }
}

/** No progress for longer than the heartbeat allows (ErrorNames.Stalled): names the step's bound and what last moved. */
export class StalledError extends NamedError {
  override readonly name = ErrorNames.Stalled;
}

/** Step Functions no longer waits for this task (ErrorNames.TaskAbandoned): names the refusal (TaskTimedOut, TaskDoesNotExist, InvalidToken). */
export class TaskAbandonedError extends NamedError {
  override readonly name = ErrorNames.TaskAbandoned;
}

/**
 * The runner's heartbeats went unaccepted for its bound (ErrorNames.HeartbeatNotAccepted): names how
 * long, how many were sent, the last answer (a network error, AccessDeniedException, throttling, or
 * none) and the step's HeartbeatSeconds.
 */
export class HeartbeatNotAcceptedError extends NamedError {
  override readonly name = ErrorNames.HeartbeatNotAccepted;
}

/** A backup's files must be restored from an archive storage class before they can be read (see ErrorNames.BackupArchived). */
export class BackupArchivedError extends NamedError {
  override readonly name = ErrorNames.BackupArchived;
}
