/**
 * Structured JSON logs, one object per line, with the same shape in the runner and the Lambdas:
 * `level`, `time`, `message`, plus context such as `target` and `backupId` on every line.
 * Values under keys that look secret are replaced, whatever the caller passes, and every line is
 * passed through core/redact.ts before it is written: a secret value the process has read (an API
 * token, a database password) or a URL's userinfo never reaches the logs, whatever field or message
 * carries it (a remote server's error body quoted into an error, for example). The string values are
 * redacted before the line is serialised (never the serialised JSON, which a replacement could make
 * invalid), and context identifiers (`target`, `backupId`, ...: IDENTIFIER_KEYS) are written as they are.
 */
import { IDENTIFIER_KEYS, redactValue } from './redact.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /** A logger that adds `fields` to every line. */
  child(fields: Record<string, unknown>): Logger;
}

const SECRET_KEY = /pass(word)?|secret|token|credential|authorization|api[-_]?key/i;
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[k] = SECRET_KEY.test(k) ? '[redacted]' : redact(v, depth + 1);
  return out;
}

export function createLogger(
  context: Record<string, unknown> = {},
  options: { level?: LogLevel; write?: (line: string) => void } = {},
): Logger {
  const min = ORDER[options.level ?? (process.env.LOG_LEVEL as LogLevel | undefined) ?? 'info'] ?? ORDER.info;
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const emit = (level: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const entry = redact({ level, time: new Date().toISOString(), message, ...context, ...fields });
    // Through JSON first, so class instances (Dates, SDK objects) become the plain data that is redacted.
    const plain: unknown = JSON.parse(JSON.stringify(entry));
    write(JSON.stringify(redactValue(plain, { keep: IDENTIFIER_KEYS })));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ ...context, ...fields }, options),
  };
}
