/**
 * Secret redaction for everything that leaves a process: error messages (a Lambda's thrown error, a
 * runner's error record and standard error), log lines, notices, events, reports, function outputs
 * and the CLI's output.
 *
 * The process keeps the set of secret values it has read (registered where secrets are read:
 * core/secrets.ts for Secrets Manager, the runner's environment parsing for the variables ECS injects,
 * the Infrahub client for the token it sends). `redactText` replaces, with `[redacted]`:
 *
 * - any run of at least PARTIAL_RUN (12) consecutive characters of a registered value as written
 *   (the whole value when it is shorter; white space and `+` in the run count among the 12, but at
 *   least MIN_SECRET_LENGTH of them must be other characters), compared case-insensitively, ignoring
 *   white space, line breaks, `+` and backslashes, and read through the per-character encodings a
 *   server or a serialiser may apply, in any mix and nested up to DECODE_LAYERS (4) deep (a URL
 *   percent-encoded inside a percent-encoded URL, JSON inside a query string): percent-encoding
 *   (either case, any characters left alone), HTML character references (`&amp;`, `&#38;`,
 *   `&#x26;`), JSON escapes at any depth (`\"`, `\/`, `\u0026`, `\\\"`) and `\xHH` byte escapes
 *   (C, Python); so an upper-cased, cut, wrapped or re-encoded echo is caught;
 * - the hexadecimal form of a value (runs of at least 12 bytes), and its base64 / base64url forms at
 *   each of the three byte alignments (the part of base64(prefix + value) that does not depend on the
 *   prefix: an `Authorization: Basic` header of `user:value`);
 * - independently of the registry, in any text: the userinfo of every URL (`scheme://user:pw@host`,
 *   up to the last `@` of the address, also with JSON-escaped slashes), the value of every
 *   `name=value` pair whose name says credential (query parameters such as `token`, `key`,
 *   `X-Amz-Signature`, `X-Amz-Credential`, libpq keywords such as `password=...`), and the value of
 *   `Authorization`, `X-INFRAHUB-KEY` and `X-API-Key` headers.
 *
 * Not caught (a text transformed beyond the encodings above): hexadecimal with separators (`5a:71`),
 * UTF-16 hex or base64, base64 of the hex form, full-width or other look-alike characters, the value
 * reversed or otherwise rearranged, and runs of fewer than MIN_SECRET_LENGTH characters other than
 * white space and `+`.
 *
 * Values shorter than MIN_SECRET_LENGTH (8) characters, and values equal to a registered public name
 * (a target, database or user name: registerPublicName), are not registered: replacing every
 * occurrence of such a string would garble the messages, names and outputs that carry it, and such a
 * value is no secret worth the name. readSecret (core/secrets.ts) warns about them.
 *
 * Redaction works on text, never on serialised JSON: callers redact string leaves (redactValue) and
 * serialise afterwards, so the result stays valid JSON. `excerpt` redacts before it cuts.
 */

export const REDACTED = '[redacted]';

/** Shorter values are not registered (see the module's documentation). */
export const MIN_SECRET_LENGTH = 8;

/** A run of this many consecutive characters of a secret is redacted wherever it appears. */
export const PARTIAL_RUN = 12;

/** Normalised forms (see normalise) of the registered values, by the run length searched for. */
const secrets = new Map<string, Decoded>();
const publicNames = new Set<string>();
let runs: Map<number, Set<string>> | undefined;

/**
 * Keys whose values are identifiers this service generates or configures (target names, backup ids,
 * S3 keys, ARNs): redactValue keeps them as they are when told to, so a secret that shares a run of
 * characters with one cannot rewrite the identifier a later state or a reader relies on.
 */
export const IDENTIFIER_KEYS: ReadonlySet<string> = new Set([
  'target',
  'targets',
  'backupId',
  'executionId',
  'executionArn',
  'owner',
  'bucket',
  'key',
  'manifest',
  'manifestKey',
  'prefix',
  'taskDefinition',
  'cluster',
  'component',
  'components',
  'step',
  'level',
  'time',
  'name',
]);

/** One character in the normalised comparison: lower case; white space, `+` and `\` are ignored. */
function normaliseChar(c: string): string {
  if (/^[\s+\\]$/u.test(c)) return '';
  return c.toLowerCase();
}

interface Decoded {
  /** The decoded, normalised characters. */
  chars: string[];
  /** Where each character came from in the source text: [start, end). */
  start: number[];
  end: number[];
}

/** One decoded character (a code point, not yet normalised) and its source span [start, end). */
interface Token {
  ch: string;
  start: number;
  end: number;
}

const HTML_NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/**
 * How many times text is decoded: an encoding inside an encoding (a URL percent-encoded inside a
 * percent-encoded URL, JSON inside a percent-encoded query) is read through up to this many layers.
 */
export const DECODE_LAYERS = 4;

const HEX2 = /^[0-9a-f]{2}$/i;

/**
 * One layer of decoding of `text`, character by character: percent-encoding, HTML references, JSON
 * escapes at any depth (`\u0041`, `\\\"`), C-style `\xHH` byte escapes; every other character as is.
 * Each token carries the span of `text` it came from.
 */
function decodeLayer(text: string): Token[] {
  const out: Token[] = [];
  const push = (decoded: string, start: number, end: number) => {
    for (const ch of decoded) out.push({ ch, start, end });
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '%' && HEX2.test(text.slice(i + 1, i + 3))) {
      let j = i;
      const bytes: number[] = [];
      while (text[j] === '%' && HEX2.test(text.slice(j + 1, j + 3))) {
        bytes.push(Number.parseInt(text.slice(j + 1, j + 3), 16));
        j += 3;
      }
      push(Buffer.from(bytes).toString('utf8'), i, j);
      i = j;
      continue;
    }
    if (c === '&') {
      const m = /^&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z]{2,6});/i.exec(text.slice(i, i + 12));
      if (m) {
        const ref = (m[1] as string).toLowerCase();
        let decoded: string | undefined;
        if (ref.startsWith('#x')) decoded = safeCodePoint(Number.parseInt(ref.slice(2), 16));
        else if (ref.startsWith('#')) decoded = safeCodePoint(Number.parseInt(ref.slice(1), 10));
        else decoded = HTML_NAMED[ref];
        if (decoded !== undefined) {
          push(decoded, i, i + m[0].length);
          i += m[0].length;
          continue;
        }
      }
    }
    if (c === '\\') {
      let k = i;
      while (text[k] === '\\') k++;
      const next = text[k];
      if (next === 'u' && /^[0-9a-f]{4}$/i.test(text.slice(k + 1, k + 5))) {
        push(String.fromCharCode(Number.parseInt(text.slice(k + 1, k + 5), 16)), i, k + 5);
        i = k + 5;
      } else if (next === 'x' && HEX2.test(text.slice(k + 1, k + 3))) {
        // A run of \xHH escapes: bytes, read as UTF-8 together (a Python or C repr of the value).
        const bytes: number[] = [];
        let j = i;
        for (;;) {
          let b = j;
          while (text[b] === '\\') b++;
          if (b === j || text[b] !== 'x' || !HEX2.test(text.slice(b + 1, b + 3))) break;
          bytes.push(Number.parseInt(text.slice(b + 1, b + 3), 16));
          j = b + 3;
        }
        push(Buffer.from(bytes).toString('utf8'), i, j);
        i = j;
      } else if (next !== undefined && 'nrtbf'.includes(next)) {
        push(' ', i, k + 1); // an escaped line break or tab: white space, ignored
        i = k + 1;
      } else if (next !== undefined) {
        push(next, i, k + 1);
        i = k + 1;
      } else i = k;
      continue;
    }
    const cp = text.codePointAt(i) as number;
    const ch = String.fromCodePoint(cp);
    push(ch, i, i + ch.length);
    i += ch.length;
  }
  return out;
}

/**
 * The text decoded (decodeLayer, repeated up to DECODE_LAYERS times while a layer still decodes
 * something) and normalised (normaliseChar), with the span of the source text each character came from.
 */
function decode(text: string): Decoded {
  if (!/[%&\\]/.test(text)) return literal(text); // nothing to decode: the common log line
  let tokens = decodeLayer(text);
  for (let layer = 1; layer < DECODE_LAYERS; layer++) {
    const inner = tokens.map((t) => t.ch).join('');
    if (!/%[0-9a-f]{2}|&#?[0-9a-z]+;|\\/i.test(inner)) break;
    const next = decodeLayer(inner);
    if (next.length === tokens.length && next.every((t, n) => t.ch === tokens[n]?.ch)) break;
    // Map spans of `inner` (code units) back to the tokens they came from, and so to `text`.
    const owner: number[] = [];
    tokens.forEach((t, n) => {
      for (let u = 0; u < t.ch.length; u++) owner.push(n);
    });
    const outer = tokens;
    tokens = next.map((t) => ({
      ch: t.ch,
      start: (outer[owner[t.start] as number] as Token).start,
      end: (outer[owner[t.end - 1] as number] as Token).end,
    }));
  }
  const out: Decoded = { chars: [], start: [], end: [] };
  for (const t of tokens) {
    for (const c of normaliseChar(t.ch)) {
      out.chars.push(c);
      out.start.push(t.start);
      out.end.push(t.end);
    }
  }
  return out;
}

function safeCodePoint(n: number): string | undefined {
  return Number.isInteger(n) && n >= 0 && n <= 0x10ffff ? String.fromCodePoint(n) : undefined;
}

/** `value` character by character, normalised but not decoded (for a value that itself contains `%41`). */
function literal(value: string): Decoded {
  const out: Decoded = { chars: [], start: [], end: [] };
  let i = 0;
  for (const ch of value) {
    for (const c of normaliseChar(ch)) {
      out.chars.push(c);
      out.start.push(i);
      out.end.push(i + ch.length);
    }
    i += ch.length;
  }
  return out;
}

/**
 * The decoded forms that stand for `value` in text: the value itself (as written and as decoded,
 * for a value that itself contains `%41` or `&amp;`), its UTF-8 bytes in hexadecimal, its base64 and
 * base64url forms, and the prefix-independent middle of base64(prefix + value) for prefixes of one
 * and two bytes (and for a value followed by more bytes). Each keeps the spans of its source form,
 * so runs are measured in the form's own characters (white space and `+` included).
 */
function representations(value: string): Decoded[] {
  const forms: Decoded[] = [literal(value), decode(value)];
  const bytes = Buffer.from(value, 'utf8');
  forms.push(literal(bytes.toString('hex')));
  for (const alphabet of ['base64', 'base64url'] as const) {
    forms.push(literal(bytes.toString(alphabet)));
    for (let pad = 0; pad < 3; pad++) {
      const b64 = Buffer.concat([Buffer.alloc(pad, 0), bytes]).toString(alphabet);
      // Characters that depend on the prefix: none, 2 or 3; the last group depends on what follows.
      const skip = [0, 2, 3][pad] as number;
      const stable = b64.slice(skip, Math.floor((pad + bytes.length) / 3) * 4);
      if (stable.length >= MIN_SECRET_LENGTH) forms.push(literal(stable));
    }
  }
  return forms.filter((f) => f.chars.length >= MIN_SECRET_LENGTH);
}

/**
 * The runs of a form searched for: for each of its characters, the shortest run starting there that
 * covers PARTIAL_RUN characters of the form as written (white space and `+` between them counted,
 * around them too) and holds at least MIN_SECRET_LENGTH compared characters; or the whole form when
 * it is shorter than that. Any PARTIAL_RUN-character run of the form as written (with at least
 * MIN_SECRET_LENGTH characters that are not white space, `+` or `\\`) therefore contains one.
 */
function formRuns(form: Decoded): string[] {
  const { chars, start, end } = form;
  const n = chars.length;
  const sourceEnd = end[n - 1] as number;
  const out: string[] = [];
  for (let k = 0; k < n; k++) {
    const from = k > 0 ? (end[k - 1] as number) : 0;
    let m = k + MIN_SECRET_LENGTH - 1;
    while (m < n && (m + 1 < n ? (start[m + 1] as number) : sourceEnd) - from < PARTIAL_RUN) m++;
    if (m >= n) {
      if (k === 0) out.push(chars.join(''));
      break;
    }
    out.push(chars.slice(k, m + 1).join(''));
  }
  return out;
}

/**
 * The forms in which `value` may appear in text, for documentation and tests: as is; upper and lower
 * case; percent-encoded (upper and lower case hex, `+` for spaces, `/` left alone); HTML character
 * references; JSON-escaped once, twice and three times, also with `\uXXXX` for every non-ASCII or
 * HTML-special character and `\/` for `/`; hexadecimal; base64 and base64url with and without padding.
 * redactText catches each of them, and any mix of their per-character encodings.
 */
export function encodings(value: string): string[] {
  const forms = new Set<string>([value, value.toUpperCase(), value.toLowerCase()]);
  const pct = encodeURIComponent(value);
  forms.add(pct);
  forms.add(pct.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()));
  forms.add(pct.replace(/%20/g, '+'));
  forms.add(pct.replace(/%2F/g, '/'));
  forms.add(
    value.replace(/[&<>"']/g, (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": '#39' }[c]};`),
  );
  const b64 = Buffer.from(value, 'utf8').toString('base64');
  forms.add(b64);
  forms.add(b64.replace(/=+$/, ''));
  forms.add(Buffer.from(value, 'utf8').toString('base64url'));
  forms.add(Buffer.from(value, 'utf8').toString('hex'));
  let json = value;
  for (let depth = 0; depth < 3; depth++) {
    json = JSON.stringify(json).slice(1, -1);
    forms.add(json);
  }
  const jsonU = JSON.stringify(value)
    .slice(1, -1)
    .replace(/[^\x20-\x7e]|[&<>]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .replace(/\//g, '\\/');
  forms.add(jsonU);
  return [...forms];
}

/**
 * Adds a secret value to the process's registry: from now on `redactText` replaces it (see the
 * module's documentation for what that covers). Returns false, registering nothing, for a value that
 * is missing, shorter than MIN_SECRET_LENGTH characters or equal to a registered public name (those
 * cannot be redacted without garbling ordinary text); registering a value twice is harmless.
 */
export function registerSecret(value: string | undefined | null): boolean {
  if (typeof value !== 'string') return false;
  const v = value.trim();
  if (!isRegistrable(v)) return false;
  for (const form of representations(v)) {
    const key = form.chars.join('');
    if (secrets.has(key)) continue;
    secrets.set(key, form);
    runs = undefined;
  }
  return true;
}

/** Why `value` would not be registered, or undefined when it would be (for readSecret's warnings). */
export function unregistrableReason(value: string): string | undefined {
  const v = value.trim();
  if ([...v].length < MIN_SECRET_LENGTH)
    return `it is shorter than ${MIN_SECRET_LENGTH} characters, too short to tell apart from ordinary text`;
  if (publicNames.has(v.toLowerCase()))
    return 'it equals a name that appears in messages by design (a target, database or user name), so it is not secret';
  return undefined;
}

const isRegistrable = (v: string) => unregistrableReason(v) === undefined;

/**
 * Declares names that appear in messages and outputs by design (a target's name, a database or user
 * name): a secret equal to one of them (case-insensitively) is not registered, so the name is never
 * rewritten; readSecret warns about such a secret.
 */
export function registerPublicName(...names: (string | undefined | null)[]): void {
  for (const n of names)
    if (typeof n === 'string' && n.trim() !== '') publicNames.add(n.trim().toLowerCase());
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

/** How many forms are registered (for tests and diagnostics; the values themselves are never exposed). */
export function registeredSecretCount(): number {
  return secrets.size;
}

/** Forgets every registered value and public name. For tests only: a process never needs to forget a secret. */
export function forgetSecrets(): void {
  secrets.clear();
  publicNames.clear();
  runs = undefined;
}

/** The runs searched for (formRuns of every registered form), by their length in compared characters. */
function secretRuns(): Map<number, Set<string>> {
  if (!runs) {
    runs = new Map();
    for (const form of secrets.values()) {
      for (const run of formRuns(form)) {
        const n = [...run].length;
        const set = runs.get(n) ?? new Set<string>();
        runs.set(n, set);
        set.add(run);
      }
    }
  }
  return runs;
}

/** `scheme://userinfo@`, also with JSON-escaped slashes: `user:password` up to the address's last `@`, or a bare user/token. */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:[\\/]{2,})(?:[^\s"'<>\\/:@]*:[^\s"'<>]*|[^\s"'<>\\/?#@:]+)@/gi;

/** `name=value` where the name says credential: query parameters, path parameters, libpq keywords. */
const CREDENTIAL_PAIR =
  /(^|[?&;#\s,({[])([\w.-]*?(?:token|secret|pass(?:word|wd)?|pwd|signature|credential|key|session(?:id)?|auth)[\w.-]*)(\s*=\s*)('(?:[^'\\]|\\.)*'|(?:[^\s&#;"'<>\\,)}\]]|\\[^"])+)/gi;

/** Credential-bearing HTTP headers quoted in text. */
const CREDENTIAL_HEADER =
  /\b((?:proxy-)?authorization|x-infrahub-key|x-api-key)(\s*[:=]\s*)((?:bearer|basic|token|digest)\s+)?[^\s,;"'\\]+/gi;

/** `text` with every registered secret (see the module's documentation), URL userinfo and credential parameter replaced. */
export function redactText(text: string): string {
  let out = text
    .replace(URL_USERINFO, `$1${REDACTED}@`)
    .replace(
      CREDENTIAL_PAIR,
      (_m, lead: string, name: string, eq: string) => `${lead}${name}${eq}${REDACTED}`,
    )
    .replace(
      CREDENTIAL_HEADER,
      (_m, name: string, sep: string, scheme: string | undefined) =>
        `${name}${sep}${scheme ?? ''}${REDACTED}`,
    );
  if (secrets.size === 0) return out;
  const decoded = decode(out);
  const stream = decoded.chars;
  const mask = new Uint8Array(out.length);
  let any = false;
  const byLength = secretRuns();
  const lengths = [...byLength.keys()].sort((a, b) => a - b);
  const sets = lengths.map((n) => byLength.get(n) as Set<string>);
  for (let i = 0; i + (lengths[0] as number) <= stream.length; i++) {
    // One growing run per position, looked up at each length a registered run has.
    let run = '';
    let n = 0;
    for (let l = 0; l < lengths.length; l++) {
      const len = lengths[l] as number;
      if (i + len > stream.length) break;
      while (n < len) run += stream[i + n++];
      if (!sets[l]?.has(run)) continue;
      mask.fill(1, decoded.start[i], decoded.end[i + len - 1]);
      any = true;
    }
  }
  if (!any) return out;
  let result = '';
  for (let i = 0; i < out.length; ) {
    if (mask[i]) {
      result += REDACTED;
      while (i < out.length && mask[i]) i++;
    } else result += out[i++];
  }
  out = result;
  return out;
}

/**
 * A line of output redacted: JSON text (an object or an array, as a CLI's --json prints) is parsed,
 * its string leaves redacted (identifiers kept: IDENTIFIER_KEYS) and serialised again with the same
 * layout (indented by two spaces when it spanned lines), so it stays valid JSON; other text goes
 * through redactText.
 */
export function redactJsonOrText(line: string): string {
  const t = line.trim();
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(t);
      return JSON.stringify(
        redactValue(parsed, { keep: IDENTIFIER_KEYS }),
        null,
        line.includes('\n') ? 2 : undefined,
      );
    } catch {
      // Not JSON after all: redacted as text.
    }
  }
  return redactText(line);
}

/**
 * At most `max` characters of `text` (an excerpt of a server's answer, a tool's standard error, a
 * message), redacted first and cut afterwards, so no cut can keep part of a secret that a later
 * redaction would no longer recognise. A cut text ends in `…`.
 */
export function excerpt(text: string, max: number): string {
  const clean = redactText(text);
  return clean.length <= max ? clean : `${clean.slice(0, Math.max(0, max - 1))}…`;
}

/** The last `max` characters of `text` (a tool's standard error tail), redacted first, starting with `…` when cut. */
export function excerptTail(text: string, max: number): string {
  const clean = redactText(text);
  return clean.length <= max ? clean : `…${clean.slice(clean.length - Math.max(0, max - 1))}`;
}

/**
 * A copy of `value` with every string in it (object keys included) passed through `redactText`.
 * Plain objects and arrays are copied; other objects (Dates, Buffers, class instances) are kept as
 * they are. Errors are redacted in place (see redactError). With `keep`, values under those keys
 * (such as IDENTIFIER_KEYS) are kept as they are. Numbers and booleans are never changed: redact
 * before serialising, never serialised JSON.
 */
export function redactValue<T>(value: T, options: { keep?: ReadonlySet<string> } = {}, depth = 0): T {
  if (typeof value === 'string') return redactText(value) as T;
  if (value === null || typeof value !== 'object' || depth > 20) return value;
  if (value instanceof Error) return redactError(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, options, depth + 1)) as T;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[options.keep?.has(k) ? k : redactText(k)] = options.keep?.has(k)
      ? v
      : redactValue(v, options, depth + 1);
  return out as T;
}

/**
 * The error with its message, stack and cause chain redacted, changed in place so its class, its
 * `name` (which the state machines' Retry and Catch match, and the runner maps to exit codes; never
 * touched) and its other fields stay as they are. Anything thrown that is not an Error becomes one,
 * with its text redacted.
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
    if (k === 'name') continue;
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
