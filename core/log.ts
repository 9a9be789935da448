/**
 * Structured JSON logs, one object per line, written by Powertools for AWS Lambda (TypeScript) Logger
 * (https://docs.powertools.aws.dev/lambda/typescript/latest/features/logger/) in the Lambdas, the
 * runner and the local mode alike. Every line has Powertools' standard keys: `level` (`DEBUG`,
 * `INFO`, `WARN`, `ERROR`), `message`, `timestamp` (ISO 8601, UTC unless TZ says otherwise),
 * `service` and, when set, `xray_trace_id` (from `_X_AMZN_TRACE_ID`, per line); in a Lambda, after
 * addLambdaContext (functions/handler.ts calls it on every invocation), also `cold_start`,
 * `function_name`, `function_arn`, `function_memory_size` and `function_request_id`. Then the
 * context (`target`, `backupId`, `step`, ... given to createLogger and child) and the call's fields.
 * Powertools reserves `level`, `message`, `timestamp`, `service` and `sampling_rate`: a field with
 * one of those names is dropped, with a warning line.
 *
 * The level: AWS_LAMBDA_LOG_LEVEL (Lambda's advanced logging controls, set when the function's log
 * format is JSON, as infra/constructs/backup-functions.ts sets it) wins; else the `level` option;
 * else POWERTOOLS_LOG_LEVEL, else LOG_LEVEL; else INFO (Powertools' order).
 *
 * Redaction is the Logger's JSON replacer (redactLogRecord): every line is redacted as a whole before
 * it is serialised (never the serialised JSON, which a replacement could make invalid). Values under
 * keys that say secret (`password`, `token`, `apiKey`, ...) are replaced whatever they hold; every
 * other string (and object key) goes through core/redact.ts, so a secret value the process has read
 * (an API token, a database password) or a URL's userinfo never reaches the logs, whatever field or
 * message carries it; errors are logged as `name`, `message`, `stack`, their own fields and `cause`,
 * all redacted. Identifiers (`target`, `backupId`, ...: IDENTIFIER_KEYS) and Powertools' own keys
 * are written as they are.
 */
import { type LogItem, Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { IDENTIFIER_KEYS, REDACTED, redactText } from './redact.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /** A logger that adds `fields` to every line. */
  child(fields: Record<string, unknown>): Logger;
}

/** Keys whose values are replaced whatever they hold. */
const SECRET_KEY = /pass(word)?|secret|token|credential|authorization|api[-_]?key/i;

/** The keys Powertools fills in (time, service, Lambda context): written as they are, at the record's top level. */
const POWERTOOLS_KEYS: ReadonlySet<string> = new Set([
  'timestamp',
  'service',
  'sampling_rate',
  'cold_start',
  'function_arn',
  'function_memory_size',
  'function_name',
  'function_request_id',
  'xray_trace_id',
  'tenant_id',
]);

/** Deeper values are written as `[…]`: no log line needs them, and a cycle cannot loop. */
const MAX_DEPTH = 30;

/** Objects redactLogRecord has returned: already redacted, never walked again. */
const redacted = new WeakSet<object>();

/**
 * The Logger's `jsonReplacerFn`: called by JSON.stringify with key `""` and the whole log record
 * first, it returns the record as plain data, redacted (see the module's documentation); the
 * record's members, passed afterwards, are returned as they are. Plain data: errors become
 * `{name, message, stack, ...own fields, cause}`, values with `toJSON` (Dates, Buffers) their JSON
 * value, other class instances (SDK objects) their own enumerable fields, bigints strings; functions,
 * symbols and circular references are left out, a value that throws while read (a getter, toJSON)
 * becomes `[unserialisable]`. Never throws for any value.
 */
export function redactLogRecord(key: string, value: unknown): unknown {
  if (key !== '' || value === null || typeof value !== 'object' || redacted.has(value)) return value;
  return plain(value, 0, []);
}

function plain(value: unknown, depth: number, ancestors: object[]): unknown {
  if (typeof value === 'string') return redactText(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (value === null || typeof value !== 'object') return value;
  if (depth > MAX_DEPTH) return '[…]';
  if (ancestors.includes(value)) return undefined;
  const inner = [...ancestors, value];
  try {
    if (value instanceof Error) {
      const { name, message, stack } = value;
      const fields: Record<string, unknown> = { name, message, stack };
      for (const [k, v] of Object.entries(value)) if (!(k in fields)) fields[k] = v;
      if (value.cause !== undefined) fields.cause = value.cause;
      return plain(fields, depth + 1, inner);
    }
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return plain(toJSON.call(value), depth + 1, inner);
    if (Array.isArray(value)) return seen(value.map((v) => plain(v, depth + 1, inner) ?? null));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (SECRET_KEY.test(k)) out[redactText(k)] = REDACTED;
      else if (IDENTIFIER_KEYS.has(k) || (depth === 0 && POWERTOOLS_KEYS.has(k))) out[k] = v;
      else out[redactText(k)] = plain(v, depth + 1, inner);
    }
    return seen(out);
  } catch {
    // A getter or toJSON that throws: the line is still written, with this value as `[unserialisable]`.
    return '[unserialisable]';
  }
}

/** `value`, marked as redacted: redactLogRecord returns it as it is if JSON.stringify passes it again. */
function seen<T extends object>(value: T): T {
  redacted.add(value);
  return value;
}

/**
 * Powertools Logger writing each line to `sink` instead of its own console (standard output for
 * DEBUG and INFO, standard error for WARN and ERROR) when one is given: the runner's standard output
 * carries its result, and tests read the lines. Serialised exactly as Powertools does, through
 * getJsonReplacer (our replacer first, then Powertools' own rules).
 */
class SinkLogger extends PowertoolsLogger {
  private sink: ((line: string) => void) | undefined;

  constructor(options: ConstructorParameters<typeof PowertoolsLogger>[0], sink?: (line: string) => void) {
    super(options);
    this.sink = sink;
  }

  protected override printLog(level: number, log: LogItem): void {
    if (!this.sink) {
      super.printLog(level, log);
      return;
    }
    log.prepareForPrint();
    this.sink(JSON.stringify(log.getAttributes(), this.getJsonReplacer()));
  }
}

/** The Lambda invocation context fields the logs carry (the handler's second argument). */
export interface LambdaContext {
  awsRequestId: string;
  functionName?: string;
  functionVersion?: string;
  invokedFunctionArn?: string;
  memoryLimitInMB?: string | number;
}

/** The Powertools loggers writing to the process's own output, one per service and level. */
const processLoggers = new Map<string, SinkLogger>();

/**
 * Adds the invocation's context to every line the process's loggers (createLogger without `write`)
 * write from now on: `function_request_id`, `function_name`, `function_arn`,
 * `function_memory_size` and `cold_start` (true on the process's first invocation, false after:
 * Powertools' Utility.getColdStart). Anything without a string `awsRequestId` (the local mode and
 * the tests call handlers with a partial context) is ignored.
 */
export function addLambdaContext(context: unknown): void {
  if (context === null || typeof context !== 'object') return;
  if (typeof (context as { awsRequestId?: unknown }).awsRequestId !== 'string') return;
  for (const logger of processLoggers.values()) logger.addContext(context as LambdaContext);
}

/**
 * A logger (see the module's documentation). `context.service` is the lines' `service` (else
 * POWERTOOLS_SERVICE_NAME, else Powertools' `service_undefined`); the rest of `context` is added to
 * every line. `options.level` is the least level written (AWS_LAMBDA_LOG_LEVEL overrides it);
 * `options.write` receives each line (without its line break) instead of the process's output.
 * Loggers without `write` share one Powertools Logger per service and level, which addLambdaContext
 * gives the invocation's context.
 */
export function createLogger(
  context: Record<string, unknown> = {},
  options: { level?: LogLevel; write?: (line: string) => void } = {},
): Logger {
  const { service, ...fields } = context;
  const powertoolsOptions = {
    ...(typeof service === 'string' ? { serviceName: service } : {}),
    ...(options.level ? { logLevel: options.level.toUpperCase() as Uppercase<LogLevel> } : {}),
    jsonReplacerFn: redactLogRecord,
  };
  let logger: SinkLogger;
  if (options.write) logger = new SinkLogger(powertoolsOptions, options.write);
  else {
    const id = `${String(service)}\0${options.level ?? ''}`;
    logger = processLoggers.get(id) ?? new SinkLogger(powertoolsOptions);
    processLoggers.set(id, logger);
  }
  return wrap(logger, fields);
}

function wrap(logger: PowertoolsLogger, context: Record<string, unknown>): Logger {
  return {
    debug: (m, f) => logger.debug(m, { ...context, ...f }),
    info: (m, f) => logger.info(m, { ...context, ...f }),
    warn: (m, f) => logger.warn(m, { ...context, ...f }),
    error: (m, f) => logger.error(m, { ...context, ...f }),
    child: (f) => wrap(logger, { ...context, ...f }),
  };
}
