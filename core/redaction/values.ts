/**
 * The rules of a redacted export (`infrahub-backup export --redact`): what a value of Infrahub's graph
 * becomes. Pure functions of the value and a key; the graph walk that applies them is
 * core/redaction/graph-copy.ts, the export around it cli/ops/redacted-export.ts.
 *
 * Infrahub keeps every attribute value on a vertex labelled `AttributeValue` (property `value`; also
 * `AttributeValueIndexed`, and `AttributeIPHost` / `AttributeIPNetwork` with `binary_address`,
 * `version`, `prefixlen` for IP attributes), shared by every attribute holding that value
 * (infrahub-server 1.11, infrahub/core/graph/schema.py and core/query/node.py: `MERGE
 * (av:AttributeValue {value, is_default})`). Infrahub validates a value when it loads an object
 * (core/attribute.py BaseAttribute.__init__: type, IP, MAC, URL, DateTime, dropdown choices, enum),
 * so a placeholder keeps the value's type and shape:
 *
 * | value | becomes | why |
 * |---|---|---|
 * | a string declared in the schema (`keep`: every value of the schema's own vertices, enum values and dropdown choices among them) | itself | already in the export (the schema is kept whole); dropdown and enum values must stay one of the declared ones |
 * | `""`, `NULL` (Infrahub's null marker, core/constants NULL_VALUE) | itself | carries nothing |
 * | an ISO 8601 date or date and time | itself | timestamps are kept (Infrahub validates DateTime) |
 * | an IPv4/IPv6 address, interface (`10.1.2.3/24`) or network | another of the same version and prefix length, prefix-preserving (Crypto-PAn's construction: bit i is flipped by a keyed function of bits 0..i-1): a host stays inside its mapped network, distinct addresses stay distinct | IPAM validates and orders by address; uniqueness and containment survive |
 * | a MAC address (EUI-48/EUI-64, `:` or `-`) | another, same separator and case (a keyed Feistel permutation of its bytes: distinct stay distinct) | Infrahub validates MAC attributes |
 * | JSON (an object or an array) | the same JSON with every string redacted by these rules, object keys included (a key declared in the schema kept, any other one replaced: equal keys get equal placeholders, so the keys of one object stay distinct); numbers, booleans, null and layout kept | JSON and List attributes, and Infrahub's HFIDs (`["device-01"]`), must still parse; an HFID keeps matching the redacted name. Keys are data too (`{"acme-corp.example.com": {...}}`); Infrahub checks only that a JSON attribute parses (core/attribute.py JSONAttribute), not its keys, and the schema's own JSON (enum lists, dropdown choices) is on schema vertices, kept whole |
 * | a URL (`scheme://...`) | `scheme://redacted-<hash>.invalid` | host, path, query and credentials are data; Infrahub validates URL attributes |
 * | any other string | `redacted-<16 hex digits>` | |
 * | a boolean, a number, a temporal value | itself | a boolean or number says little and Infrahub validates their type and ranges (number pools, VLAN ids, min/max); **numbers are kept** |
 * | a list | each element by these rules | |
 *
 * `<hash>` is HMAC-SHA256 of the value under a key drawn at random for each export and never stored
 * (node:crypto randomBytes), first 64 bits in hex: equal values get equal placeholders within one
 * export (uniqueness constraints and cross-references hold; the chance that two of n distinct values
 * share one is about n²/2⁶⁵, 3·10⁻⁶ for ten million values), and no placeholder can be traced back to
 * its value by hashing guesses, nor matched across two exports.
 */
import { createHmac } from 'node:crypto';

/** What every redacted string starts with (a URL keeps its scheme before it). */
export const REDACTED_PREFIX = 'redacted-';

/** Infrahub's null marker (infrahub/core/constants NULL_VALUE): an attribute without a value. */
export const INFRAHUB_NULL = 'NULL';

/** The bytes of the per-export key (HMAC-SHA256: RFC 2104 recommends at least the hash's output length). */
export const REDACTION_KEY_BYTES = 32;

/** An ISO 8601 date (`2026-11-21`) or date and time (`2026-11-21T02:00:00.123456+00:00`, `Z`, a space for the `T`). */
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$/;
const MAC = /^[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}((\1[0-9A-Fa-f]{2}){2})?$/;
const URL_SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;

export interface ValueRedactor {
  /**
   * A property value: a string by the rules (module docstring), a list element by element, any
   * other value (boolean, number, Neo4j Integer, temporal, null) as it is.
   */
  value(value: unknown): unknown;
  /** A string by the rules in the module docstring. */
  string(value: string): string;
  /**
   * The properties of an `AttributeIPHost` (`kind` host) or `AttributeIPNetwork` (network) vertex:
   * `value` mapped (prefix-preserving, same version and prefix length) and `binary_address`
   * recomputed from it as Infrahub writes it (infrahub/core/utils.py convert_ip_to_binary_str: the
   * address, for a network its network address, as 32 or 128 binary digits). A value that is not an
   * IP form gets the plain string rule and `binary_address` all zeros, so no bit of it survives.
   */
  ipVertex(value: string, kind: 'host' | 'network'): { value: string; binaryAddress: string };
  /** How many strings were replaced, and how many kept by each rule (for the export's report). */
  readonly stats: RedactionStats;
}

export interface RedactionStats {
  replaced: number;
  /** Strings kept: declared in the schema, empty or NULL, timestamps. */
  keptSchema: number;
  keptEmpty: number;
  keptTimestamp: number;
}

/**
 * The redactor of one export.
 *
 * @param key the per-export secret (at least REDACTION_KEY_BYTES bytes; callers draw it with
 *   randomBytes and never store it)
 * @param keep strings kept as they are: the schema's own values (core/redaction/graph-copy.ts reads them)
 * @throws RangeError when the key is shorter than REDACTION_KEY_BYTES
 */
export function valueRedactor(key: Uint8Array, keep: ReadonlySet<string> = new Set()): ValueRedactor {
  if (key.length < REDACTION_KEY_BYTES)
    throw new RangeError(`a redaction key has at least ${REDACTION_KEY_BYTES} bytes, not ${key.length}`);
  const secret = Buffer.from(key);
  const stats: RedactionStats = { replaced: 0, keptSchema: 0, keptEmpty: 0, keptTimestamp: 0 };
  const mac = (domain: string, data: string | Buffer) =>
    createHmac('sha256', secret).update(domain).update('\0').update(data).digest();
  const placeholder = (value: string) =>
    `${REDACTED_PREFIX}${mac('string', value).subarray(0, 8).toString('hex')}`;

  /** An IP form mapped (mapIpForm), or undefined when `value` is none (a network: one with its prefix and zero host bits). */
  const ip = (
    value: string,
    kind: 'any' | 'host' | 'network',
  ): { bytes: Uint8Array; text: string } | undefined => {
    const parsed = parseIpForm(value);
    if (!parsed || (kind === 'network' && !parsed.network)) return undefined;
    const bytes = mapIpForm(parsed, (prefix) => mac(`ip${parsed.version}`, prefix)[0] as number);
    return { bytes, text: formatIp(bytes, parsed.version, parsed.prefix) };
  };

  const string = (value: string): string => {
    if (value === '' || value === INFRAHUB_NULL) {
      stats.keptEmpty += 1;
      return value;
    }
    if (keep.has(value)) {
      stats.keptSchema += 1;
      return value;
    }
    if (TIMESTAMP.test(value) && !Number.isNaN(Date.parse(value.replace(' ', 'T')))) {
      stats.keptTimestamp += 1;
      return value;
    }
    const first = value.trimStart()[0];
    // Each string inside is counted by its own rule; the JSON text itself is not one more replacement.
    if ((first === '{' || first === '[') && isJson(value)) return mapJsonStrings(value, string, string);
    stats.replaced += 1;
    const m = MAC.exec(value);
    if (m)
      return redactMac(value, m[1] as string, (round, half) =>
        mac('mac', Buffer.concat([Buffer.of(round), half])),
      );
    // After the MAC: eight groups of two hex digits read as both (EUI-64 or IPv6); either way the
    // result has the same shape.
    const address = ip(value, 'any');
    if (address) return address.text;
    const scheme = URL_SCHEME.exec(value);
    if (scheme) return `${scheme[1]}://${placeholder(value)}.invalid`;
    return placeholder(value);
  };

  const value = (v: unknown): unknown => {
    if (typeof v === 'string') return string(v);
    if (Array.isArray(v)) return v.map(value);
    return v;
  };

  return {
    value,
    string,
    ipVertex(raw, kind) {
      const address = ip(raw, kind);
      if (address) {
        stats.replaced += 1;
        const bits = [...address.bytes].map((b) => b.toString(2).padStart(8, '0')).join('');
        return { value: address.text, binaryAddress: bits };
      }
      const parsed = parseIpForm(raw);
      return { value: string(raw), binaryAddress: '0'.repeat(parsed?.bytes.length === 16 ? 128 : 32) };
    },
    stats,
  };
}

// ---------------------------------------------------------------------------------------------
// IP addresses
// ---------------------------------------------------------------------------------------------

export interface IpForm {
  version: 4 | 6;
  /** The address: 4 or 16 bytes. */
  bytes: Uint8Array;
  /** The prefix length written after `/`, if any. */
  prefix?: number;
  /** Whether it is written with a prefix and its host bits are zero (a network, as ip_network takes it). */
  network: boolean;
}

/**
 * An IPv4 or IPv6 address, optionally with `/prefix`, as Python's ipaddress accepts it (dotted
 * decimal without leading zeros; IPv6 with `::` and an embedded IPv4 tail; no zone id).
 * @returns undefined when `value` is not exactly one
 */
export function parseIpForm(value: string): IpForm | undefined {
  const slash = value.indexOf('/');
  const address = slash === -1 ? value : value.slice(0, slash);
  let prefix: number | undefined;
  if (slash !== -1) {
    const p = value.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return undefined;
    prefix = Number(p);
  }
  const v4 = parseIpv4(address);
  const bytes = v4 ?? parseIpv6(address);
  if (!bytes) return undefined;
  const version = v4 ? 4 : 6;
  if (prefix !== undefined && prefix > bytes.length * 8) return undefined;
  const network = prefix !== undefined && hostBitsZero(bytes, prefix);
  return { version, bytes, ...(prefix !== undefined ? { prefix } : {}), network };
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (const [i, part] of parts.entries()) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255) return undefined;
    bytes[i] = Number(part);
  }
  return bytes;
}

function parseIpv6(text: string): Uint8Array | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(text) || text.split('::').length > 2) return undefined;
  const groups: number[] = [];
  const parse = (part: string, last: boolean): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const pieces = part.split(':');
    for (const [i, piece] of pieces.entries()) {
      if (last && i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIpv4(piece);
        if (!v4) return undefined;
        out.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(piece)) out.push(Number.parseInt(piece, 16));
      else return undefined;
    }
    return out;
  };
  const [head, tail] = text.split('::') as [string, string | undefined];
  const before = parse(head, tail === undefined);
  const after = tail === undefined ? [] : parse(tail, true);
  if (!before || !after) return undefined;
  if (tail === undefined) {
    if (before.length !== 8) return undefined;
    groups.push(...before);
  } else {
    const missing = 8 - before.length - after.length;
    if (missing < 1) return undefined;
    groups.push(...before, ...new Array<number>(missing).fill(0), ...after);
  }
  const bytes = new Uint8Array(16);
  for (const [i, g] of groups.entries()) {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  }
  return bytes;
}

/** An address as Python's ipaddress writes it: dotted decimal, or RFC 5952 IPv6 (lower case, the longest run of two or more zero groups as `::`). */
export function formatIp(bytes: Uint8Array, version: 4 | 6, prefix?: number): string {
  const suffix = prefix === undefined ? '' : `/${prefix}`;
  if (version === 4) return `${[...bytes].join('.')}${suffix}`;
  const groups = Array.from(
    { length: 8 },
    (_, i) => ((bytes[2 * i] as number) << 8) | (bytes[2 * i + 1] as number),
  );
  let best = { start: -1, length: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j += 1;
    if (j - i > best.length) best = { start: i, length: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.length < 2) return `${hex.join(':')}${suffix}`;
  const left = hex.slice(0, best.start).join(':');
  const right = hex.slice(best.start + best.length).join(':');
  return `${left}::${right}${suffix}`;
}

function bit(bytes: Uint8Array, i: number): number {
  return ((bytes[i >> 3] as number) >> (7 - (i & 7))) & 1;
}

function hostBitsZero(bytes: Uint8Array, prefix: number): boolean {
  for (let i = prefix; i < bytes.length * 8; i += 1) if (bit(bytes, i) === 1) return false;
  return true;
}

function maskHostBits(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  for (let i = prefix; i < out.length * 8; i += 1)
    out[i >> 3] = (out[i >> 3] as number) & ~(1 << (7 - (i & 7)));
  return out;
}

/**
 * The address of an IP form mapped by prefixPreserving, with one change when it is written with a
 * prefix p: an all-zero host part stays all zero (a network stays a network, as Python's ip_network
 * requires, and `10.0.0.0/24` stays the network of every `10.0.0.x/24`), and the one host part the
 * permutation would send to zero gets the image of zero instead (a swap: distinct forms of one
 * prefix length still map to distinct ones). The first p bits of the result depend only on the
 * first p bits of the address, so a host stays inside its mapped network.
 */
export function mapIpForm(form: IpForm, prf: (prefix: string) => number): Uint8Array {
  const mapped = prefixPreserving(form.bytes, prf);
  if (form.prefix === undefined) return mapped;
  if (form.network) return maskHostBits(mapped, form.prefix);
  if (!hostBitsZero(mapped, form.prefix)) return mapped;
  return prefixPreserving(maskHostBits(form.bytes, form.prefix), prf);
}

/**
 * A prefix-preserving permutation of addresses (the construction of Crypto-PAn, Xu, Fan, Ammar and
 * Moon, "Prefix-Preserving IP Address Anonymization", ICNP 2002): output bit i is input bit i
 * XOR the lowest bit of `prf` of the input's first i bits, so two addresses sharing their first k
 * bits map to two sharing exactly their first k bits; a bijection (distinct stay distinct).
 *
 * @param prf a keyed function of a prefix, given as a string of 0 and 1; its lowest bit is used
 */
export function prefixPreserving(bytes: Uint8Array, prf: (prefix: string) => number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  let prefix = '';
  for (let i = 0; i < bytes.length * 8; i += 1) {
    const b = bit(bytes, i);
    const flipped = b ^ (prf(prefix) & 1);
    if (flipped) out[i >> 3] = (out[i >> 3] as number) | (1 << (7 - (i & 7)));
    prefix += String(b);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// MAC addresses
// ---------------------------------------------------------------------------------------------

/**
 * A MAC address's bytes through a four-round Feistel network keyed by `round` (a permutation of
 * 6- or 8-byte values: distinct addresses stay distinct), written back with the same separator and
 * letter case.
 */
function redactMac(value: string, separator: string, round: (round: number, half: Buffer) => Buffer): string {
  const bytes = Buffer.from(value.split(separator).join(''), 'hex');
  const half = bytes.length / 2;
  let left = bytes.subarray(0, half);
  let right = bytes.subarray(half);
  for (let r = 0; r < 4; r += 1) {
    const f = round(r, right);
    const next = Buffer.alloc(half);
    for (let i = 0; i < half; i += 1) next[i] = (left[i] as number) ^ (f[i] as number);
    left = right;
    right = next;
  }
  const hex = Buffer.concat([left, right]).toString('hex').match(/../g) ?? [];
  const text = hex.join(separator);
  return value === value.toLowerCase() ? text : text.toUpperCase();
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

function isJson(value: string): boolean {
  try {
    const parsed: unknown = JSON.parse(value);
    return parsed !== null && typeof parsed === 'object';
  } catch {
    return false;
  }
}

/**
 * `json` with each string value replaced by `map` of its decoded text, and each object key by
 * `mapKey` of its own (kept as written without it), written back as JSON strings; everything else is
 * copied byte for byte, so numbers keep their digits (JSON.parse would round integers beyond 2⁵³)
 * and the layout stays. `json` must be valid JSON; `mapKey` must keep distinct keys distinct.
 */
export function mapJsonStrings(
  json: string,
  map: (s: string) => string,
  mapKey?: (key: string) => string,
): string {
  let out = '';
  let i = 0;
  while (i < json.length) {
    const c = json[i];
    if (c !== '"') {
      out += c;
      i += 1;
      continue;
    }
    let j = i + 1;
    while (j < json.length && json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
    const token = json.slice(i, j + 1);
    let k = j + 1;
    while (k < json.length && /\s/.test(json[k] as string)) k += 1;
    const isKey = json[k] === ':';
    const text = JSON.parse(token) as string;
    out += isKey ? (mapKey ? JSON.stringify(mapKey(text)) : token) : JSON.stringify(map(text));
    i = j + 1;
  }
  return out;
}
