import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SecretInvalidError } from './errors.js';
import { registerSecret } from './redact.js';

/**
 * Fields of a JSON secret that hold a credential, registered for redaction whichever field was asked
 * for. The others (an RDS-managed secret's `username`, `engine`, `host`, `port`, `dbname`) name
 * things that appear in messages by design: redacting "postgres" or "prefect" everywhere would garble
 * them and hide nothing.
 */
const CREDENTIAL_FIELD = /pass(word|wd)?|secret|token|key|credential/i;

/** What a secret read for `field` must look like, for the error message. */
function expectedShape(field: string): string {
  if (field === 'token') return '{"token": "..."} or the token as plain text';
  if (field === 'username' || field === 'password') return '{"username": "...", "password": "..."}';
  return `{"${field}": "..."} or the value as plain text`;
}

/**
 * Reads a secret's value (GetSecretValue's `SecretString`). A JSON secret (text starting with `{`)
 * yields the value of `field`, Secrets Manager's usual shape (`{"token": "..."}`, or
 * `{"username": "...", "password": "..."}` for databases); any other text is the value itself.
 *
 * What it reads is registered with core/redact.ts (the whole text; for JSON, every field named like a
 * credential, such as `password` or `token`), so no error, log line or notice of this process can
 * carry it afterwards; account and location fields (`username`, `host`, `dbname`) are not. The content is never quoted: malformed JSON fails with SecretInvalidError
 * naming the secret and the shape expected (Node's own JSON.parse message quotes the text it could
 * not parse, which is why it is not used), as does a missing or empty field.
 *
 * Errors: SecretInvalidError (no string value, malformed JSON, missing field); the SDK's errors from
 * GetSecretValue (ResourceNotFoundException, AccessDeniedException, ...), which never carry the value.
 * See https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html
 */
export async function readSecret(
  client: Pick<SecretsManagerClient, 'send'>,
  secretId: string,
  field: string,
): Promise<string> {
  const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
  const text = out.SecretString;
  if (!text)
    throw new SecretInvalidError(`secret ${secretId} has no string value (expected ${expectedShape(field)})`);
  registerSecret(text);
  if (!text.trimStart().startsWith('{')) return text.trim();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SecretInvalidError(
      `secret ${secretId} is not valid JSON (expected ${expectedShape(field)}); its content is not shown`,
    );
  }
  // Text starting with "{" that parses is an object.
  for (const [key, v] of Object.entries(parsed as Record<string, unknown>))
    if (typeof v === 'string' && CREDENTIAL_FIELD.test(key)) registerSecret(v);
  const value = (parsed as Record<string, unknown>)[field];
  if (typeof value !== 'string' || value === '')
    throw new SecretInvalidError(
      `secret ${secretId} has no "${field}" field with a text value (expected ${expectedShape(field)})`,
    );
  // The value asked for is a credential too, unless it names an account.
  if (!/^(user(name)?|login)$/i.test(field)) registerSecret(value);
  return value;
}
