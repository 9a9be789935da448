/**
 * Review 12 item 7: redaction weaker than "any run of 12 characters". Runs of a secret with white
 * space or `+` in them, and secrets read through more than one layer of encoding (a URL inside a
 * percent-encoded URL, JSON inside a query string, a C or Python `\xHH` repr), got through.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { forgetSecrets, REDACTED, redactText, registerSecret } from '../../core/redact.js';

afterEach(() => forgetSecrets());

const PASSPHRASE = 'correct horse battery staple xkcd';
const PLUSSED = 'ab+cd+ef+gh+ij+kl+mn+op+qr+st';
const SPECIALS = 'Zq8+/xY?z&K3<p>w"9~Lm=Tb%Ae_V';
const PLAIN = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** The longest substring of `secret` that comes out of redactText unchanged between two words. */
function longestLeak(secret: string): string {
  let best = '';
  for (let i = 0; i < secret.length; i++)
    for (let j = i + best.length + 1; j <= secret.length; j++) {
      const run = secret.slice(i, j);
      if (!redactText(`x ${run} y`).includes(REDACTED)) best = run;
    }
  return best;
}

describe('redaction: every run of 12 characters of a secret, as written', () => {
  for (const secret of [PASSPHRASE, PLUSSED, SPECIALS, PLAIN, 'p@ss w0rd:with,some spaces here ok']) {
    it(`no 12-character run of ${JSON.stringify(secret)} survives, spaces and + counted`, () => {
      registerSecret(secret);
      const leaks = [];
      for (let i = 0; i + 12 <= secret.length; i++) {
        const run = secret.slice(i, i + 12);
        if (!redactText(`x ${run} y`).includes(REDACTED)) leaks.push(run);
      }
      expect(leaks).toEqual([]);
      expect(longestLeak(secret).length).toBeLessThan(12);
    });
  }

  it('leaves the words around a redacted passphrase alone', () => {
    registerSecret(PASSPHRASE);
    expect(redactText(`login failed for password "${PASSPHRASE}" at 12:00 on host db-1`)).toBe(
      `login failed for password "${REDACTED}" at 12:00 on host db-1`,
    );
    expect(redactText('orrect horse ')).toBe(`${REDACTED} `);
    expect(redactText('the correct answer, a horse')).toBe('the correct answer, a horse');
  });
});

describe('redaction: encodings inside encodings', () => {
  const secret = 'S3cr3t/pa ss+w&rd=äx';
  const pct = (s: string) => encodeURIComponent(s);
  const cases: Record<string, string> = {
    'percent-encoded twice': pct(pct(secret)),
    'percent-encoded three times': pct(pct(pct(secret))),
    'a URL with the password inside a percent-encoded URL': `https://sso.example.com/login?next=${pct(`postgres://app:${pct(secret)}@db:5432/prefect`)}`,
    'JSON inside a query string': `https://h/?state=${pct(JSON.stringify({ pw: secret }))}`,
    'percent-encoding inside a JSON string': JSON.stringify({ url: `https://h/?q=${pct(secret)}` }),
    'JSON \\u escapes of every character': [...secret]
      .map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
      .join(''),
    'C / Python \\x byte escapes': [...Buffer.from(secret, 'utf8')]
      .map((b) => `\\x${b.toString(16).padStart(2, '0')}`)
      .join(''),
    'a Python bytes repr': `b'${[...Buffer.from(secret, 'utf8')].map((b) => (b > 0x7e ? `\\x${b.toString(16)}` : String.fromCharCode(b))).join('')}'`,
    'HTML references of percent-encoding': pct(secret).replace(/%/g, '&#37;'),
  };
  for (const [name, text] of Object.entries(cases)) {
    it(`redacts a secret ${name}`, () => {
      registerSecret(secret);
      const out = redactText(text);
      expect(out).toContain(REDACTED);
      // Nothing of the secret is left to read: decode what remains as far as it goes.
      let rest = out;
      for (let n = 0; n < 4; n++) {
        try {
          rest = decodeURIComponent(rest);
        } catch {
          break;
        }
      }
      for (let i = 0; i + 12 <= secret.length; i++) expect(rest).not.toContain(secret.slice(i, i + 12));
    });
  }

  it('stays fast on long text (64 KiB of log with encodings) with several secrets registered', () => {
    for (const s of [secret, PASSPHRASE, PLUSSED, SPECIALS, PLAIN]) registerSecret(s);
    const text = `${'GET /a?b=%2541%25&c=\\x41\\u0042 ok '.repeat(1800)}${pct(pct(secret))}`;
    const t0 = performance.now();
    const out = redactText(text);
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(out.endsWith(REDACTED)).toBe(true);
  });
});
