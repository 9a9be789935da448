import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/**
 * Reads a secret's value. A JSON secret yields the value of `field` (Secrets Manager's usual shape,
 * `{"token": "..."}`); a plain-text secret is the value itself. The value is never logged.
 */
export async function readSecret(
  client: SecretsManagerClient,
  secretId: string,
  field: string,
): Promise<string> {
  const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
  const text = out.SecretString;
  if (!text) throw new Error(`secret ${secretId} has no string value`);
  if (text.trimStart().startsWith('{')) {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const value = parsed[field];
    if (typeof value !== 'string' || value === '')
      throw new Error(`secret ${secretId} has no "${field}" field`);
    return value;
  }
  return text.trim();
}
