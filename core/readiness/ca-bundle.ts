/**
 * CA bundles kept in Secrets Manager (`neo4j.tls.caSecret`, `postgres.tls.caSecret`): drivers and
 * libpq take a bundle as a file path, so the PEM text is written to a private file.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';

/**
 * Writes a CA bundle's PEM text (from a Secrets Manager secret) to a private file under the
 * temporary folder, named by its SHA-256 (written once per content), for the driver's
 * `trustedCertificates`, which takes file paths.
 * @returns the file's path.
 * @throws ConfigError (`what` names the setting) when the text holds no PEM certificate.
 */
export function caPemFile(pem: string, what: string): string {
  const text = pem.trim();
  if (!/-----BEGIN CERTIFICATE-----/.test(text))
    throw new ConfigError(what, [
      `${what}: holds no PEM certificate ("-----BEGIN CERTIFICATE-----"); the secret must hold the CA bundle as text`,
    ]);
  const dir = join(tmpdir(), 'tls-ca');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `ca-${createHash('sha256').update(text).digest('hex').slice(0, 16)}.pem`);
  if (!existsSync(file)) writeFileSync(file, `${text}\n`, { mode: 0o600 });
  return file;
}
