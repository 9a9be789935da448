/**
 * Secret redaction for everything that leaves a process: error messages (a Lambda's thrown error, a
 * runner's error record and standard error), log lines, notices, events, reports and the CLI's output.
 *
 * The process keeps the set of secret values it has read (registered where secrets are read:
 * core/secrets.ts for Secrets Manager, the runner's environment parsing for the variables ECS injects,
 * the local mode through the same readSecret). `redactText` replaces each of them, and their common
 * encodings, with `[redacted]`, so a remote server that echoes a credential in its error body (an
 * Infrahub that quotes the rejected token, a tool that prints its connection string) cannot carry it
 * into our outputs. Independently of the registry, the userinfo of every URL (`scheme://user:pw@host`)
 * is replaced, in any process.
 *
 * Encodings covered, per value: as is; URL-encoded (`encodeURIComponent`, and `+` for spaces);
 * base64 and base64url (with and without padding); JSON-escaped once, twice and three times (an error
 * message inside a Lambda's JSON Cause inside an execution history event).
 *
 * Values shorter than MIN_SECRET_LENGTH characters are not registered: replacing every occurrence of
 * a two-letter string would garble every message, and such a value is no secret worth the name. URL
 * userinfo is still removed whatever its length.
 */

export const REDACTED = '[redacted]';

/** Shorter values are not registered (see the module's documentation). */
export const MIN_SECRET_LENGTH = 4;

const secrets = new Set<string>();
let pattern: RegExp | undefined;

/** `scheme://userinfo@`: the userinfo of any URL, whatever the scheme (http, bolt, postgresql, s3, ...). */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'<>\\]+@/gi;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The forms in which `value` may appear in text: as is and in its common encodings. */
export function encodings(value: string): string[] {
  const forms = new Set<string>([value]);
  forms.add(encodeURIComponent(value));
  forms.add(encodeURIComponent(value).replace(/%20/g, '+'));
  const b64 = Buffer.from(value, 'utf8').toString('base64');
  forms.add(b64);
  forms.add(b64.replace(/=+$/, ''));
  forms.add(Buffer.from(value, 'utf8').toString('base64url'));
  let json = value;
  for (let depth = 0; depth < 3; depth++) {
    json = JSON.stringify(json).slice(1, -1);
    forms.add(json);
  }
  // Too short an encoding (base64 of a short value) is left out for the same reason as short values.
  return [...forms].filter((f) => f.length >= MIN_SECRET_LENGTH);
}

/**
 * Adds a secret value to the process's registry: from now on `redactText` replaces it. Empty,
 * missing and too short values are ignored; registering a value twice is harmless.
 */
export function registerSecret(value: string | undefined | null): void {
  if (typeof value !== 'string') return;
  const forms = [value, value.trim()].filter((v) => v.length >= MIN_SECRET_LENGTH);
  for (const v of forms) {
    if (secrets.has(v)) continue;
    secrets.add(v);
    pattern = undefined;
  }
}

/**
 * Variables that hold credentials in a runner's or the CLI's environment: the database passwords ECS
 * injects from Secrets Manager (PGPASSWORD, NEO4J_PASSWORD), AWS credentials (AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN) and any other variable whose name says it is a password, token or secret.
 */
export const SECRET_ENV_NAME = /PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|API_?KEY/i;

/** Registers every variable of `env` whose name matches SECRET_ENV_NAME. */
export function registerSecretsFromEnv(env: NodeJS.ProcessEnv | Record<string, string | undefined>): void {
  for (const [name, value] of Object.entries(env)) if (SECRET_ENV_NAME.test(name)) registerSecret(value);
}

/** How many values are registered (for tests and diagnostics; the values themselves are never exposed). */
export function registeredSecretCount(): number {
  return secrets.size;
}

/** Forgets every registered value. For tests only: a process never needs to forget a secret. */
export function forgetSecrets(): void {
  secrets.clear();
  pattern = undefined;
}

function secretPattern(): RegExp | undefined {
  if (secrets.size === 0) return undefined;
  if (!pattern) {
    const forms = new Set<string>();
    for (const s of secrets) for (const f of encodings(s)) forms.add(f);
    // Longest first, so an encoding containing another form is replaced whole.
    const alternatives = [...forms].sort((a, b) => b.length - a.length).map(escapeRegExp);
    pattern = new RegExp(alternatives.join('|'), 'g');
  }
  return pattern;
}

/** `text` with every registered secret (in any of its encodings) and every URL's userinfo replaced. */
export function redactText(text: string): string {
  let out = text.replace(URL_USERINFO, `$1${REDACTED}@`);
  const p = secretPattern();
  if (p) out = out.replace(p, REDACTED);
  return out;
}

/**
 * A copy of `value` with every string in it (object keys included) passed through `redactText`.
 * Plain objects and arrays are copied; other objects (Dates, Buffers, class instances) are kept as
 * they are. Errors are redacted in place (see redactError).
 */
export function redactValue<T>(value: T, depth = 0): T {
  if (typeof value === 'string') return redactText(value) as T;
  if (value === null || typeof value !== 'object' || depth > 20) return value;
  if (value instanceof Error) return redactError(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1)) as T;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[redactText(k)] = redactValue(v, depth + 1);
  return out as T;
}

/**
 * The error with its message, stack and cause chain redacted, changed in place so its class, its
 * `name` (which the state machines' Retry and Catch match) and its other fields stay as they are.
 * Anything thrown that is not an Error becomes one, with its text redacted.
 */
export function redactError(err: unknown, depth = 0): Error {
  if (!(err instanceof Error)) return new Error(redactText(String(err)));
  const redact = (key: 'message' | 'stack') => {
    const text = err[key];
    if (typeof text !== 'string') return;
    const clean = redactText(text);
    if (clean === text) return;
    // Some errors define message or stack as getters or read-only: define an own value instead.
    Object.defineProperty(err, key, { value: clean, writable: true, configurable: true, enumerable: false });
  };
  redact('message');
  redact('stack');
  if (err.cause !== undefined && depth < 5) {
    const cause = err.cause instanceof Error ? redactError(err.cause, depth + 1) : redactValue(err.cause);
    Object.defineProperty(err, 'cause', {
      value: cause,
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }
  // Own enumerable string fields (an API error's body, a tool's stderr tail) go into serialised errors too.
  for (const [k, v] of Object.entries(err)) {
    if (typeof v === 'string' || (v !== null && typeof v === 'object')) {
      try {
        (err as unknown as Record<string, unknown>)[k] = redactValue(v);
      } catch {
        // A read-only field: it is not ours to change, and not part of the message.
      }
    }
  }
  return err;
}
