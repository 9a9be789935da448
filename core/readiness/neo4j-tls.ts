/**
 * TLS of every Bolt (Cypher) connection to a target's Neo4j, in one place: the runner's counts,
 * restores and validation, the readiness waits, and the Neo4jReady Lambda all open their drivers
 * with `openBoltDriver`, so no connection to a remote server can carry the credentials unencrypted
 * unless the configuration says `neo4j.tls.mode: "disable"`.
 *
 * Modes (`neo4j.tls.mode`, core/config/schema.ts Neo4jTlsSchema), each with its URI scheme (Neo4j
 * Operations Manual 5, "SSL framework", "Connect with SSL over Bolt": `bolt+s` full certificate
 * checks, `bolt+ssc` self-signed certificates accepted):
 * - `verify-full` (default), `bolt+s://`: encrypted; the server's certificate chain verified against
 *   the CA bundle (`ca` / `caSecret`) or, without one, the system trust store; the host name (or IP
 *   address) the runner connects to checked against the certificate.
 * - `require`, `bolt+ssc://`: encrypted; any certificate accepted (passive eavesdropping only).
 * - `disable`, `bolt://`: no TLS, the credentials travel in the clear. Must be said explicitly.
 *
 * neo4j-driver 6 (node_modules/neo4j-driver-core/types/types.d.ts `Config`; the Node channel
 * neo4j-driver-bolt-connection/lib/channel/node/node-channel.js): a `+s`/`+ssc` scheme may not be
 * combined with `encrypted`/`trust` in the config ("Encryption/trust can only be configured either
 * through URL or config, not both"), and `bolt+s` trusts the system store only, so a custom CA needs
 * the plain scheme with `encrypted: true, trust: 'TRUST_CUSTOM_CA_SIGNED_CERTIFICATES',
 * trustedCertificates: [PEM file]`. The driver is therefore always given the plain scheme and the
 * explicit settings. Its TLS socket checks the chain and then Node's `checkServerIdentity` against
 * the host name (SNI `servername`) or, for an IP address, the address: a certificate for another name
 * leaves the socket unauthorized and the driver refuses it ("Server certificate is not trusted ...
 * Socket responded with: ERR_TLS_CERT_ALTNAME_INVALID") before any credential is sent.
 *
 * Servers the runner starts itself on loopback (the offline count's and the drill's disposable
 * Neo4j, containers/runner/src/components/scratch.ts) are plain Bolt with no `tls` given: nothing
 * but the task can reach 127.0.0.1, so no credential crosses a network. Any other host without `tls`
 * and with a plain scheme is refused.
 */
import { readFileSync, statSync } from 'node:fs';
import neo4j, { type Config, type Driver } from 'neo4j-driver';
import { hostPortOf } from '../config/schema.js';
import { ConfigError, RunnerConfigError } from '../errors.js';
import { caPemFile } from './ca-bundle.js';

/** The TLS modes of `neo4j.tls.mode`. */
export const NEO4J_TLS_MODES = ['disable', 'require', 'verify-full'] as const;
export type Neo4jTlsMode = (typeof NEO4J_TLS_MODES)[number];

/** One connection's TLS: the mode and, for verify-full, the CA bundle file (else the system store). */
export interface Neo4jTls {
  mode: Neo4jTlsMode;
  /** PEM file of the CA certificates to trust (verify-full only); unset: the system trust store. */
  caFile?: string;
}

/** What a Bolt driver is opened with. */
export interface BoltEndpoint {
  /** `bolt://`, `bolt+s://`, `bolt+ssc://` (or `neo4j…://`) URI; its scheme must agree with `tls.mode`. */
  uri: string;
  username: string;
  password: string;
  /** The connection's TLS; unset only for a server on loopback that the runner started itself. */
  tls?: Neo4jTls;
}

const URI = /^(bolt|neo4j)(\+s|\+ssc)?:\/\/(?:[^@/]*@)?(\[[^\]]+\]|[^:/?#]+)/i;
const SCHEME_MODE: Record<string, Neo4jTlsMode> = { '': 'disable', '+s': 'verify-full', '+ssc': 'require' };
const MODE_SUFFIX: Record<Neo4jTlsMode, string> = { disable: '', require: '+ssc', 'verify-full': '+s' };

/**
 * The Bolt URI for `host:port` in `mode`: `bolt+s://` (verify-full), `bolt+ssc://` (require),
 * `bolt://` (disable); with `routing`, the same in the `neo4j` scheme. A routing driver sends each
 * statement to a member that can run it: administration commands (CREATE DATABASE, the recreate
 * procedure, aliases) are writes to `system` and must reach its leader, which the `bolt` scheme never
 * routes to ("Drivers can only use server-side routing when the neo4j:// URI scheme is used",
 * Operations Manual, "Clustering: server-side routing").
 */
export function boltUri(host: string, port: number, mode: Neo4jTlsMode, routing = false): string {
  return `${routing ? 'neo4j' : 'bolt'}${MODE_SUFFIX[mode]}://${hostPortOf(host, port)}`;
}

/** The mode a URI's scheme states, and its host; undefined when it is no bolt/neo4j URI. */
export function parseBoltUri(uri: string): { scheme: string; mode: Neo4jTlsMode; host: string } | undefined {
  const m = URI.exec(uri);
  if (!m) return undefined;
  const suffix = (m[2] ?? '').toLowerCase();
  return {
    scheme: `${(m[1] as string).toLowerCase()}${suffix}`,
    mode: SCHEME_MODE[suffix] as Neo4jTlsMode,
    host: (m[3] as string).replace(/^\[|\]$/g, ''),
  };
}

/** True for 127.0.0.0/8, ::1 and localhost: a server only this task (or machine) can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * The driver's URI and TLS settings for `endpoint` (see the module comment).
 * @returns `uri` with the plain scheme, `config` with `encrypted` and, when encrypted, `trust` and
 *   `trustedCertificates`, and the effective `mode`.
 * @throws ConfigError naming `neo4j.tls.mode` when the URI's scheme and `tls.mode` disagree, when a
 *   plain URI to a non-loopback host comes without an explicit `tls` (credentials in the clear), when
 *   a CA file is given for another mode than verify-full, or when the URI is no Bolt URI.
 */
export function boltDriverSettings(endpoint: Pick<BoltEndpoint, 'uri' | 'tls'>): {
  uri: string;
  config: Pick<Config, 'encrypted' | 'trust' | 'trustedCertificates'>;
  mode: Neo4jTlsMode;
} {
  const source = `Neo4j connection to ${endpoint.uri.replace(/\/\/[^@/]*@/, '//')}`;
  const parsed = parseBoltUri(endpoint.uri);
  if (!parsed)
    throw new ConfigError(source, ['uri: must be a bolt://, bolt+s://, bolt+ssc:// or neo4j… URI']);
  const tls = endpoint.tls;
  if (tls && tls.mode !== parsed.mode)
    throw new ConfigError(source, [
      `neo4j.tls.mode: is "${tls.mode}" but the URI's scheme ${parsed.scheme}:// means "${parsed.mode}"; ` +
        `use ${parsed.scheme.replace(/\+.*$/, '')}${MODE_SUFFIX[tls.mode]}:// for "${tls.mode}"`,
    ]);
  if (!tls && parsed.mode === 'disable' && !isLoopbackHost(parsed.host))
    throw new ConfigError(source, [
      `neo4j.tls.mode: refusing to send the Neo4j credentials unencrypted to ${parsed.host}: plain ${parsed.scheme}:// ` +
        'needs neo4j.tls.mode "disable" said explicitly (or use TLS: bolt+s:// with neo4j.tls.mode "verify-full")',
    ]);
  const mode = tls?.mode ?? parsed.mode;
  if (tls?.caFile && mode !== 'verify-full')
    throw new ConfigError(source, [`neo4j.tls.ca: is used by mode "verify-full" only, not "${mode}"`]);
  const uri = endpoint.uri.replace(/^(bolt|neo4j)\+s{1,2}c?:/i, '$1:');
  if (mode === 'disable') return { uri, config: { encrypted: false }, mode };
  if (mode === 'require') return { uri, config: { encrypted: true, trust: 'TRUST_ALL_CERTIFICATES' }, mode };
  return {
    uri,
    config: tls?.caFile
      ? { encrypted: true, trust: 'TRUST_CUSTOM_CA_SIGNED_CERTIFICATES', trustedCertificates: [tls.caFile] }
      : { encrypted: true, trust: 'TRUST_SYSTEM_CA_SIGNED_CERTIFICATES' },
    mode,
  };
}

/**
 * A neo4j-driver driver for `endpoint` with its TLS settings (boltDriverSettings) and `config`
 * (timeouts, pool size; its own `encrypted`/`trust`/`trustedCertificates` are not taken). Opening a
 * driver connects nowhere yet: a refusal here happens before any connection.
 * @throws ConfigError as boltDriverSettings.
 */
export function openBoltDriver(endpoint: BoltEndpoint, config: Config = {}): Driver {
  const settings = boltDriverSettings(endpoint);
  const { encrypted: _e, trust: _t, trustedCertificates: _c, ...rest } = config;
  return neo4j.driver(settings.uri, neo4j.auth.basic(endpoint.username, endpoint.password), {
    ...rest,
    ...settings.config,
  });
}

/**
 * The runner's Neo4j TLS from its environment (the task definition sets them from `neo4j.tls`):
 * `NEO4J_TLS_MODE` (`disable`, `require`, `verify-full`; unset is `verify-full`, the schema's
 * default), `NEO4J_TLS_CA` (a CA bundle file in the image) or `NEO4J_TLS_CA_PEM` (the bundle's PEM
 * text, an ECS secret from `neo4j.tls.caSecret`), checked against `NEO4J_URI`'s scheme. Called before
 * any connection.
 * @throws RunnerConfigError naming the variable and the setting: a plain `bolt://` URI without
 *   NEO4J_TLS_MODE=disable (credentials in the clear), a scheme that disagrees with the mode, an
 *   unknown mode, a CA for another mode than verify-full, both CA variables, a CA file that does not
 *   exist, or PEM text without a certificate.
 */
export function neo4jTlsFromEnv(env: NodeJS.ProcessEnv, uri: string): Neo4jTls {
  const raw = env.NEO4J_TLS_MODE?.trim() || 'verify-full';
  if (!(NEO4J_TLS_MODES as readonly string[]).includes(raw))
    throw new RunnerConfigError([
      `NEO4J_TLS_MODE: must be one of ${NEO4J_TLS_MODES.join(', ')} (neo4j.tls.mode; got "${raw.slice(0, 40)}")`,
    ]);
  const mode = raw as Neo4jTlsMode;
  const parsed = parseBoltUri(uri);
  if (!parsed) throw new RunnerConfigError(['NEO4J_URI: must be a bolt:// or neo4j:// URI']);
  if (parsed.mode !== mode) {
    const base = parsed.scheme.replace(/\+.*$/, '');
    throw new RunnerConfigError([
      parsed.mode === 'disable'
        ? `NEO4J_URI: ${parsed.scheme}:// is unencrypted Bolt (the Neo4j credentials would travel in the clear), and NEO4J_TLS_MODE is ` +
          `${env.NEO4J_TLS_MODE?.trim() ? `"${mode}"` : `unset ("${mode}", the default of neo4j.tls.mode)`}: ` +
          `use ${base}${MODE_SUFFIX[mode]}://, or set NEO4J_TLS_MODE=disable (neo4j.tls.mode "disable") to allow unencrypted Bolt explicitly`
        : `NEO4J_URI: ${parsed.scheme}:// means neo4j.tls.mode "${parsed.mode}", but NEO4J_TLS_MODE is "${mode}": use ${base}${MODE_SUFFIX[mode]}://`,
    ]);
  }
  const file = env.NEO4J_TLS_CA?.trim();
  const pem = env.NEO4J_TLS_CA_PEM?.trim();
  if (mode !== 'verify-full') {
    const set = [file ? 'NEO4J_TLS_CA' : '', pem ? 'NEO4J_TLS_CA_PEM' : ''].filter(Boolean);
    if (set.length > 0)
      throw new RunnerConfigError([
        `${set.join(', ')}: a CA bundle is used by NEO4J_TLS_MODE=verify-full only, not "${mode}" (neo4j.tls.ca / caSecret)`,
      ]);
    return { mode };
  }
  if (file && pem)
    throw new RunnerConfigError([
      'NEO4J_TLS_CA, NEO4J_TLS_CA_PEM: set one CA bundle, not both (neo4j.tls.ca or neo4j.tls.caSecret)',
    ]);
  if (pem) {
    try {
      return { mode, caFile: caPemFile(pem, 'NEO4J_TLS_CA_PEM') };
    } catch (err) {
      throw new RunnerConfigError([(err as ConfigError).problems?.[0] ?? String(err)]);
    }
  }
  if (!file) return { mode };
  try {
    if (!statSync(file).isFile()) throw new Error('not a file');
    readFileSync(file);
  } catch {
    throw new RunnerConfigError([
      `NEO4J_TLS_CA: the CA bundle ${file} does not exist in this runner (neo4j.tls.ca is a path inside the runner image; use neo4j.tls.caSecret for a bundle kept in Secrets Manager)`,
    ]);
  }
  return { mode, caFile: file };
}

/**
 * A Bolt connection attempt's error described as a TLS problem, or undefined when it is none: a
 * certificate the CA bundle (or system store) does not vouch for or that names another host
 * (the driver's "Server certificate is not trusted ... Socket responded with: <Node.js code>"), a
 * TLS handshake with a server that speaks plain Bolt, or an unencrypted connection that a server
 * requiring TLS leaves unanswered or closes (Neo4j 5.26 with `server.bolt.tls_level=REQUIRED` does not
 * answer the plain Bolt handshake: measured in test/integration/neo4j-tls.test.ts). The text names
 * the `neo4j.tls` setting to look at.
 */
export function describeBoltTlsError(err: unknown, tls: Neo4jTls | undefined): string | undefined {
  // A routing driver (neo4j://) reports "Could not perform discovery" and keeps the connection's
  // own failure as its `cause`: the whole chain is read.
  const chain: Array<{ message: string; code: string }> = [];
  for (
    let e: unknown = err;
    e !== undefined && e !== null && chain.length < 5;
    e = (e as { cause?: unknown }).cause
  )
    chain.push({
      message: e instanceof Error ? e.message : String(e),
      code: String((e as { code?: unknown })?.code ?? ''),
    });
  const message = chain.map((c) => c.message).join(' | caused by: ');
  const code =
    chain
      .map((c) => c.code)
      .find((c) => /^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|EPROTO)/.test(c)) ??
    chain[0]?.code ??
    '';
  const mode = tls?.mode ?? 'disable';
  const socket = /Socket responded with:\s*(\S+)/.exec(message)?.[1];
  if (
    /Server certificate is not trusted/i.test(message) ||
    /^(ERR_TLS_CERT|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED)/.test(code)
  ) {
    const reason = socket ?? code;
    const ca = tls?.caFile
      ? `the CA bundle ${tls.caFile}`
      : 'the system trust store (no neo4j.tls.ca/caSecret)';
    if (/ALTNAME|HOSTNAME/i.test(reason))
      return `TLS: the server's certificate does not name the host connected to (${reason}); connect by a name the certificate lists (neo4j.host) or reissue the certificate with it`;
    return `TLS: the server's certificate is not signed by a CA in ${ca} (${reason}); check neo4j.tls.ca / neo4j.tls.caSecret`;
  }
  if (
    mode !== 'disable' &&
    /wrong version number|ERR_SSL_|EPROTO|packet length too long|Client network socket disconnected before secure TLS connection/i.test(
      `${code} ${message}`,
    )
  )
    return `TLS: the server did not complete a TLS handshake (${message.split('\n')[0]}): it may not have Bolt TLS enabled (dbms.ssl.policy.bolt.enabled, server.bolt.tls_level); neo4j.tls.mode is "${mode}"`;
  if (
    mode === 'disable' &&
    /no answer within|never answered the Bolt handshake|closed|ECONNRESET/i.test(message)
  )
    return 'a server with server.bolt.tls_level=REQUIRED does not answer unencrypted Bolt: neo4j.tls.mode is "disable"; use "verify-full" (bolt+s) if the server requires TLS';
  return undefined;
}

/** Re-exported for the Neo4jReady Lambda and tests: the bundle file of a `caSecret` (ca-bundle.ts). */
export { caPemFile };
