import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SecretInvalidError } from './errors.js';
import { registerPublicName, registerSecret, unregistrableReason } from './redact.js';

/**
 * Fields of a JSON secret that hold a credential, registered for redaction whichever field was asked
 * for. The others (an RDS-managed secret's `username`, `engine`, `host`, `port`, `dbname`) name
 * things that appear in messages by design: redacting "postgres" or "prefect" everywhere would garble
 * them and hide nothing.
 */
const CREDENTIAL_FIELD = /pass(word|wd)?|secret|token|key|credential/i;

/** Fields of a JSON secret that name an account or a location (an RDS-managed secret's): public names. */
const ACCOUNT_FIELD =
  /^(user(name)?|login|engine|host(name)?|dbname|database|dbInstanceIdentifier|dbClusterIdentifier)$/i;

/** The key names of the usual secret shapes: left out when a malformed secret's pieces are registered. */
const KEY_NAME =
  /^(user(name)?|login|pass(word|wd)?|pwd|token|secret|api_?key|key|engine|host(name)?|port|dbname|database|dbInstanceIdentifier|dbClusterIdentifier)$/i;

/** What a secret read for `field` must look like, for the error message. */
function expectedShape(field: string): string {
  if (field === 'token')
    return '{"token": "..."} or the token as plain text; without one Infrahub would answer as its anonymous account';
  if (field === 'username' || field === 'password') return '{"username": "...", "password": "..."}';
  return `{"${field}": "..."} or the value as plain text`;
}

/** Options of readSecret. */
export interface ReadSecretOptions {
  /**
   * Names that appear in messages and outputs by design (the target's name, a database or user
   * name): registered as public names (core/redact.ts registerPublicName), so a secret equal to one
   * is not registered for redaction and `warn` is told.
   */
  publicNames?: (string | undefined)[];
  /** Told when a credential read cannot be redacted (too short, or equal to a public name); the value is never quoted. */
  warn?: (message: string) => void;
}

/**
 * Reads a secret's value (GetSecretValue's `SecretString`), after dropping a leading UTF-8 byte-order
 * mark. A JSON object (text starting with `{`) yields the value of `field`, Secrets Manager's usual
 * shape (`{"token": "..."}`, or `{"username": "...", "password": "..."}` for databases); a JSON string
 * (text starting with `"`) is its inner value; other JSON (an array, a number, `true`, `null`) is
 * refused; any other text is the value itself.
 *
 * What it reads is registered with core/redact.ts (the whole text; for a JSON object, every field
 * named like a credential, such as `password` or `token`), so no error, log line, notice or output of
 * this process can carry it afterwards; account and location fields (`username`, `host`, `dbname`)
 * are not, and are declared public names instead. A credential that cannot be redacted (shorter than
 * MIN_SECRET_LENGTH, 8, characters, or equal to a public name: the secret's own `username` or
 * `dbname`, or `options.publicNames`) is returned but not registered, and `options.warn` says so:
 * such a value cannot be told apart from the names and text that carry it, and is no secret.
 *
 * The content is never quoted: malformed JSON fails with SecretInvalidError naming the secret and the
 * shape expected (Node's own JSON.parse message quotes the text it could not parse, which is why it is
 * not used), as does a missing, empty or whitespace-only field, an empty or whitespace-only text, or
 * JSON of another type.
 *
 * Errors: SecretInvalidError (no string value, malformed JSON, JSON that is not an object or a string,
 * missing field); the SDK's errors from GetSecretValue (ResourceNotFoundException,
 * AccessDeniedException, ...), which never carry the value.
 * See https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html
 */
export async function readSecret(
  client: Pick<SecretsManagerClient, 'send'>,
  secretId: string,
  field: string,
  options: ReadSecretOptions = {},
): Promise<string> {
  const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
  const raw = out.SecretString;
  const text = raw?.replace(/^\uFEFF/, '');
  if (!text || text.trim() === '')
    throw new SecretInvalidError(`secret ${secretId} has no string value (expected ${expectedShape(field)})`);
  registerPublicName(...(options.publicNames ?? []));
  const credential = (value: string, what: string) => {
    const why = unregistrableReason(value);
    if (why === undefined) registerSecret(value);
    else
      options.warn?.(
        `secret ${secretId}: ${what} is not redacted from messages because ${why}; use a longer random value`,
      );
  };
  const trimmed = text.trim();
  const first = trimmed[0];
  if (first !== '{' && first !== '"' && first !== '[') {
    // Plain text; a bare JSON number or boolean is plain text too (a numeric password is allowed).
    credential(trimmed, 'its value');
    return trimmed;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    // Malformed: its values are registered piece by piece (the text between JSON punctuation, key
    // names left out), never the whole text, whose structure (`{"username": "`) is ordinary text.
    for (const piece of trimmed.split(/[{}[\]":,\s]+/)) if (!KEY_NAME.test(piece)) registerSecret(piece);
    throw new SecretInvalidError(
      `secret ${secretId} is not valid JSON (expected ${expectedShape(field)}); its content is not shown`,
    );
  }
  if (typeof parsed === 'string') {
    if (parsed.trim() === '')
      throw new SecretInvalidError(
        `secret ${secretId} is an empty JSON string (expected ${expectedShape(field)})`,
      );
    credential(parsed, 'its value');
    return parsed.trim();
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    for (const v of Array.isArray(parsed) ? parsed : []) if (typeof v === 'string') registerSecret(v);
    const got = Array.isArray(parsed) ? 'a JSON array' : `JSON ${parsed === null ? 'null' : typeof parsed}`;
    throw new SecretInvalidError(
      `secret ${secretId} is ${got}, not an object or a string (expected ${expectedShape(field)}); its content is not shown`,
    );
  }
  const record = parsed as Record<string, unknown>;
  for (const [key, v] of Object.entries(record))
    if (typeof v === 'string' && ACCOUNT_FIELD.test(key) && key !== field) registerPublicName(v);
  for (const [key, v] of Object.entries(record))
    if (typeof v === 'string' && CREDENTIAL_FIELD.test(key)) credential(v, `its "${key}" field`);
  const value = record[field];
  // A blank value (empty or whitespace only) is no value: for an Infrahub token it would be sent as
  // no token at all, which Infrahub answers as its anonymous account instead of refusing.
  if (typeof value !== 'string' || value.trim() === '')
    throw new SecretInvalidError(
      `secret ${secretId} has no "${field}" field with a text value${typeof value === 'string' ? ` (it is ${value === '' ? 'empty' : 'only whitespace'})` : ''} (expected ${expectedShape(field)})`,
    );
  // The value asked for is a credential too, unless it names an account.
  if (!/^(user(name)?|login)$/i.test(field) && !CREDENTIAL_FIELD.test(field))
    credential(value, `its "${field}" field`);
  return value;
}
