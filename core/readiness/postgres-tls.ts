/**
 * TLS to a target's PostgreSQL, one setting for every connection the runner makes: node-postgres
 * (readiness probes, row counts, the restore's catalogue work and swap) and libpq's tools (pg_dump,
 * pg_restore, psql), so both sides of a backup or restore are encrypted and verified alike.
 *
 * Modes, with libpq's meaning (PostgreSQL 15 docs, "SSL Support", Table 34.1 "SSL Mode Descriptions",
 * https://www.postgresql.org/docs/15/libpq-ssl.html):
 * - `disable`: no TLS. A server whose pg_hba.conf has only `hostssl` entries refuses the login.
 * - `require`: encrypted, the server's certificate not verified (libpq `sslmode=require`;
 *   node-postgres `ssl: { rejectUnauthorized: false }`). Protects against passive eavesdropping only.
 *   libpq verifies the chain anyway when a root certificate file exists (`sslrootcert`, default
 *   `~/.postgresql/root.crt`): the runner never sets PGSSLROOTCERT in this mode, and the image has no
 *   such file.
 * - `verify-full`: encrypted, the chain verified against the configured CA bundle, and the host name
 *   (or IP address) the runner connects to checked against the certificate's subjectAltName (libpq
 *   `sslmode=verify-full` with `sslrootcert`; node-postgres `ssl: { ca, rejectUnauthorized: true,
 *   servername }`, Node.js `tls.connect` with its default `checkServerIdentity`).
 *
 * The runner's environment (set by the task definition from the target's `postgres.tls`): `PGSSLMODE`
 * and `PGSSLROOTCERT` are libpq's own variables (libpq docs, "Environment Variables"), read here for
 * node-postgres too; `PG_TLS_CA_PEM` holds a CA bundle's PEM text (an ECS secret from Secrets
 * Manager) and is written to a file that becomes the root certificate file.
 */
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { type ConfigError, RunnerConfigError } from '../errors.js';
import { caPemFile } from './ca-bundle.js';

/** The TLS modes a target may use (libpq sslmode names). */
export const POSTGRES_TLS_MODES = ['disable', 'require', 'verify-full'] as const;
export type PostgresTlsMode = (typeof POSTGRES_TLS_MODES)[number];

/**
 * Where the runner image keeps the Amazon RDS global CA bundle (containers/runner/Dockerfile downloads
 * https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem at build time; RDS User Guide,
 * "Using SSL/TLS to encrypt a connection to a DB instance or cluster", "Certificate bundles for all
 * AWS Regions"). `postgres.tls.ca: "rds"` points here.
 */
export const RDS_CA_BUNDLE_PATH = '/opt/runner/certs/rds-global-bundle.pem';

/** How one target's connections use TLS: the mode, and for verify-full the CA bundle file. */
export interface PostgresTls {
  mode: PostgresTlsMode;
  /** PEM file of the CA certificates to trust (verify-full only). */
  caFile?: string;
}

/**
 * The node-postgres `ssl` option for `tls` when connecting to `host`: `false` (disable),
 * `{ rejectUnauthorized: false }` (require), or the CA bundle's text with verification and, for a
 * host name (not an IP address: RFC 6066 forbids SNI with an address), `servername`.
 * @throws RunnerConfigError when the CA file cannot be read.
 */
export function pgSslOption(
  tls: PostgresTls | undefined,
  host: string,
): false | { rejectUnauthorized: boolean; ca?: string; servername?: string } {
  if (!tls || tls.mode === 'disable') return false;
  if (tls.mode === 'require') return { rejectUnauthorized: false };
  return {
    ca: readCa(tls.caFile),
    rejectUnauthorized: true,
    ...(isIP(host) === 0 ? { servername: host } : {}),
  };
}

function readCa(file: string | undefined): string {
  if (!file)
    throw new RunnerConfigError([
      'PGSSLROOTCERT: verify-full needs a CA bundle (postgres.tls.ca or postgres.tls.caSecret)',
    ]);
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new RunnerConfigError([
      `PGSSLROOTCERT: cannot read the CA bundle ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    ]);
  }
}

/**
 * libpq's variables for `tls` (pg_dump, pg_restore, psql): `PGSSLMODE`, and `PGSSLROOTCERT` for
 * verify-full. For the other modes PGSSLROOTCERT is `undefined`, so a caller spreading this over an
 * environment removes an inherited one (with a root certificate file, libpq's `require` would verify).
 * No `tls` is `disable` (the drill's disposable server on loopback; tests' plain servers).
 */
export function libpqTlsEnv(tls: PostgresTls | undefined): {
  PGSSLMODE: PostgresTlsMode;
  PGSSLROOTCERT: string | undefined;
} {
  const mode = tls?.mode ?? 'disable';
  return { PGSSLMODE: mode, PGSSLROOTCERT: mode === 'verify-full' ? tls?.caFile : undefined };
}

/**
 * The runner's TLS setting from its environment: `PGSSLMODE` (`disable`, `require`, `verify-full`;
 * unset is `disable`, the behaviour before TLS was configurable: the task definition always sets
 * it), `PGSSLROOTCERT` (a CA bundle file) or `PG_TLS_CA_PEM` (the bundle's PEM text, written to a
 * private file under the temporary folder, which then is the root certificate file).
 * @throws RunnerConfigError naming the variable: an unknown mode, verify-full without a CA, both CA
 *   variables, a CA file that does not exist, or PEM text without a certificate.
 */
export function postgresTlsFromEnv(env: NodeJS.ProcessEnv): PostgresTls {
  const raw = env.PGSSLMODE?.trim() || 'disable';
  if (!(POSTGRES_TLS_MODES as readonly string[]).includes(raw))
    throw new RunnerConfigError([
      `PGSSLMODE: must be one of ${POSTGRES_TLS_MODES.join(', ')} (got "${raw.slice(0, 40)}")`,
    ]);
  const mode = raw as PostgresTlsMode;
  if (mode !== 'verify-full') return { mode };
  const file = env.PGSSLROOTCERT?.trim();
  const pem = env.PG_TLS_CA_PEM?.trim();
  if (file && pem)
    throw new RunnerConfigError([
      'PGSSLROOTCERT, PG_TLS_CA_PEM: set one CA bundle, not both (postgres.tls.ca or postgres.tls.caSecret)',
    ]);
  if (pem) {
    try {
      return { mode, caFile: caPemFile(pem, 'PG_TLS_CA_PEM') };
    } catch (err) {
      throw new RunnerConfigError([(err as ConfigError).problems?.[0] ?? String(err)]);
    }
  }
  if (!file)
    throw new RunnerConfigError([
      'PGSSLROOTCERT: PGSSLMODE is verify-full, which needs a CA bundle (PGSSLROOTCERT or PG_TLS_CA_PEM)',
    ]);
  try {
    if (!statSync(file).isFile()) throw new Error('not a file');
  } catch {
    throw new RunnerConfigError([
      `PGSSLROOTCERT: the CA bundle ${file} does not exist in this runner${file === RDS_CA_BUNDLE_PATH ? ' (the runner image downloads the Amazon RDS bundle there at build time; outside the image, set postgres.tls.ca to a local file)' : ''}`,
    ]);
  }
  return { mode, caFile: file };
}

const TLS_CODE =
  /^(ERR_TLS_|ERR_SSL_|EPROTO$|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|UNABLE_TO_(GET_ISSUER_CERT|VERIFY_LEAF_SIGNATURE|GET_ISSUER_CERT_LOCALLY|DECRYPT_CERT_SIGNATURE)|HOSTNAME_MISMATCH$)/;

/**
 * A connection attempt's error described as a TLS problem, or `undefined` when it is none: a
 * certificate the CA bundle does not vouch for or that names another host (Node.js TLS error codes),
 * a server without TLS (node-postgres "The server does not support SSL connections"), or a server
 * that refuses unencrypted logins (SQLSTATE 28000 with pg_hba.conf's "no encryption"). The text says
 * which `postgres.tls` setting to look at.
 */
export function describeTlsError(err: unknown, tls: PostgresTls | undefined): string | undefined {
  const code = String((err as { code?: unknown })?.code ?? '');
  const message = err instanceof Error ? err.message : String(err);
  const mode = tls?.mode ?? 'disable';
  if (TLS_CODE.test(code)) {
    const ca = tls?.caFile ? ` (CA bundle ${tls.caFile})` : '';
    return `TLS: the server's certificate was refused${ca}: ${code}: ${message}; check postgres.tls.ca (the CA that signed the server's certificate) and that the certificate names the configured host`;
  }
  if (/server does not support SSL/i.test(message))
    return `TLS: the server does not accept TLS connections, and postgres.tls.mode is ${mode}; enable ssl on the server, or set postgres.tls.mode to "disable" (unencrypted)`;
  if (/error establishing an SSL connection/i.test(message))
    return `TLS: the server answered the TLS request with an error (postgres.tls.mode ${mode}): ${message}`;
  if ((code === '28000' || code === '') && /no encryption/i.test(message))
    return `TLS: the server refuses unencrypted connections (${message}), and postgres.tls.mode is ${mode}; set postgres.tls.mode to "verify-full" (or "require")`;
  return undefined;
}
