/**
 * Errors with a stable `name`. The state machine's Retry/Catch and the CLI's exit codes match on
 * these names, so they are declared once here and imported everywhere.
 */
export const ErrorNames = {
  ConfigError: 'ConfigError',
} as const;

export type ErrorName = (typeof ErrorNames)[keyof typeof ErrorNames];

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
