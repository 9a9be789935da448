/**
 * The review of the secret redaction (issue 12, items 17 and 18): every input the reviewer showed
 * slipping through, and its neighbours of the same kind. Servers are real loopback HTTP servers (the
 * fake Infrahub API of the harness, or a server that echoes the token it was sent); tools are real
 * child processes. The channels of the local executor (history, notices, manifest) are in
 * test/integration/secrets-review.test.ts.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterEach, describe, expect, it } from 'vitest';
import { InfrahubApiSchema } from '../../core/config/schema.js';
import { StorageError } from '../../core/errors.js';
import { preflight } from '../../core/infrahub/preflight.js';
import { infrahubVersion, listTasks } from '../../core/infrahub/tasks.js';
import { createLogger } from '../../core/log.js';
import { clip, deliverNotice } from '../../core/notices/deliver.js';
import { firstLine } from '../../core/readiness/wait.js';
import {
  excerpt,
  forgetSecrets,
  REDACTED,
  redactError,
  redactJsonOrText,
  redactText,
  registerSecret,
} from '../../core/redact.js';
import { readSecret } from '../../core/secrets.js';
import { runTool } from '../../core/tools/run-tool.js';
import { lambdaHandler } from '../../functions/handler.js';
import { startFakeInfrahub, task } from '../../harness/fake-infrahub-api.js';

afterEach(() => forgetSecrets());

const TOKEN = '06438eb2-8019-4776-878c-0941b1f1d1ec';
const FANCY = 'Tok/en&"<x>é+y';

const secretsAnswering = (text: string) =>
  ({ send: async () => ({ SecretString: text }) }) as unknown as Pick<SecretsManagerClient, 'send'>;

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

/** A loopback server answering every request with `status` and `body(token it was sent)`. */
async function echoServer(
  status: number,
  body: (token: string) => string,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const token = String(req.headers['x-infrahub-key'] ?? '');
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(body(token));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

const html = (t: string) =>
  t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Changed or partial echoes of a token, as servers and gateways write them. */
const VARIANTS: Record<string, [string, (t: string) => string]> = {
  'upper case': [TOKEN, (t) => `{"detail":"Invalid token ${t.toUpperCase()}"}`],
  'its first 18 characters': [TOKEN, (t) => `{"detail":"Invalid token ${t.slice(0, 18)}..."}`],
  'its last 12 characters': [TOKEN, (t) => `{"detail":"token ending in ${t.slice(-12)} is revoked"}`],
  'split across two lines': [TOKEN, (t) => `Invalid token ${t.slice(0, 20)}\n${t.slice(20)}`],
  'split across lines in a JSON string': [
    TOKEN,
    (t) => JSON.stringify({ e: `${t.slice(0, 15)}\r\n${t.slice(15)}` }),
  ],
  hex: [TOKEN, (t) => `bad key bytes: ${Buffer.from(t).toString('hex')}`],
  'upper-case hex': [TOKEN, (t) => `bad key bytes: ${Buffer.from(t).toString('hex').toUpperCase()}`],
  'lower-case percent-encoding': [
    FANCY,
    (t) => `bad key ${encodeURIComponent(t).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())}`,
  ],
  'percent-encoding leaving / alone': [
    FANCY,
    (t) => `GET /api?q=${encodeURIComponent(t).replace(/%2F/g, '/')}`,
  ],
  'HTML entities': [FANCY, (t) => `<p>Invalid token ${html(t)}</p>`],
  'numeric HTML references': [FANCY, (t) => `<p>${[...t].map((c) => `&#${c.codePointAt(0)};`).join('')}</p>`],
  'JSON \\u0026 \\u003c escapes': [
    FANCY,
    (t) =>
      JSON.stringify({ error: `bad ${t}` })
        .replace(/&/g, '\\u0026')
        .replace(/</g, '\\u003c')
        .replace(/>/g, '\\u003e'),
  ],
  'JSON \\u00e9 escape': [FANCY, (t) => JSON.stringify({ error: `bad ${t}` }).replace(/é/g, '\\u00e9')],
  'JSON \\/ escape': [FANCY, (t) => JSON.stringify({ error: `bad ${t}` }).replace(/\//g, '\\/')],
  'base64 of api:<token> (Basic auth)': [
    TOKEN,
    (t) => `Proxy said: credentials ${Buffer.from(`api:${t}`).toString('base64')} refused`,
  ],
  'base64 of the token after one character': [
    TOKEN,
    (t) => `blob ${Buffer.from(`x${t}`).toString('base64')}`,
  ],
  'base64 of the token after two characters': [
    TOKEN,
    (t) => `blob ${Buffer.from(`xy${t}`).toString('base64')}`,
  ],
  'base64url of the token followed by more': [
    TOKEN,
    (t) => `blob ${Buffer.from(`${t}:more`).toString('base64url')}`,
  ],
};

/** The longest run of the secret (or of its hex or base64) that `text` still holds; 0 when none. */
function leaked(text: string, secret: string): string[] {
  const found: string[] = [];
  const forms = [secret, Buffer.from(secret).toString('hex')];
  for (const form of forms)
    for (let n = 8; n <= form.length; n++)
      for (let i = 0; i + n <= form.length; i++) {
        const piece = form.slice(i, i + n);
        if (text.toLowerCase().includes(piece.toLowerCase()) && !found.includes(piece)) found.push(piece);
      }
  // Base64 at each alignment: any 8 characters of the prefix-independent middle.
  for (let pad = 0; pad < 3; pad++) {
    const b64 = Buffer.from(`${'x'.repeat(pad)}${secret}`)
      .toString('base64')
      .slice(4, -4);
    for (let i = 0; i + 12 <= b64.length; i++)
      if (text.includes(b64.slice(i, i + 12))) found.push(b64.slice(i, i + 12));
  }
  // Percent-encoded, HTML, JSON forms of the fancy value's distinctive middle.
  if (secret === FANCY)
    for (const piece of ['en&', 'x>é', '%26%22', 'u0026', '&amp;&quot;', '#38;'])
      if (text.includes(piece)) found.push(piece);
  return found.filter((p) => !/^\[?redacted\]?$/.test(p));
}

describe('changed or partial echoes of a registered secret', () => {
  for (const [name, [secret, body]] of Object.entries(VARIANTS)) {
    it(`redactText removes ${name}`, () => {
      registerSecret(secret);
      const text = body(secret);
      const out = redactText(text);
      expect(out).toContain(REDACTED);
      expect(leaked(out, secret), out).toEqual([]);
    });
  }

  it('an API answering 500 with any of them: the error quotes an excerpt with no part of the token', async () => {
    for (const [name, [secret, body]] of Object.entries(VARIANTS)) {
      forgetSecrets();
      const srv = await echoServer(500, body);
      try {
        const err = await rejection(listTasks({ address: srv.url, token: secret }));
        const message = redactError(err).message;
        expect(message, name).toMatch(/answered HTTP 500/);
        expect(leaked(message, secret), `${name}: ${message}`).toEqual([]);
      } finally {
        await srv.close();
      }
    }
  });

  it('an API refusing the token (401, 403): its answer is not quoted at all', async () => {
    for (const status of [401, 403]) {
      const srv = await echoServer(status, (t) => `token ${t.slice(0, 6)} / ${t.slice(6, 11)} refused`);
      try {
        const err = await rejection(listTasks({ address: srv.url, token: TOKEN }));
        expect(err.message).toMatch(new RegExp(`HTTP ${status} \\(the API token was refused\\)`));
        expect(err.message).toContain('the answer is not shown');
        expect(err.message).not.toContain('refused token');
        expect(err.message).not.toContain(TOKEN.slice(0, 6));
        expect(err.message).not.toContain(TOKEN.slice(6, 11));
      } finally {
        await srv.close();
      }
    }
  });

  it('ordinary text is left alone: identifiers, numbers, JSON, words', () => {
    registerSecret(TOKEN);
    registerSecret(FANCY);
    const text =
      '{"bytes":2048,"target":"infrahub-prod"} staleTaskHours (6 h) infrahub_backup_20261121_030000 sha256 ' +
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 s3://bkt/x/backup_information.json';
    expect(redactText(text)).toBe(text);
  });
});

describe('text from servers a function returns', () => {
  it('the Infrahub version must be a version string; anything else is refused without being quoted', async () => {
    for (const good of ['1.5.0', '1.6.0rc1', 'v1.2.3-dev+abc123', '1.4']) {
      const fake = await startFakeInfrahub({ script: () => [], version: good });
      try {
        expect(await infrahubVersion({ address: fake.address, token: 'fake-infrahub-token' })).toBe(good);
      } finally {
        await fake.close();
      }
    }
    for (const bad of [`1.5.0 (api key ${TOKEN})`, `${'1'.repeat(70)}`, 'latest', '1.5.0\nX']) {
      const fake = await startFakeInfrahub({ script: () => [], version: bad, token: TOKEN });
      try {
        const err = await rejection(infrahubVersion({ address: fake.address, token: TOKEN }));
        expect(err.name).toBe('InfrahubApiError');
        expect(err.message).toMatch(/not a version string/);
        expect(err.message).not.toContain(bad);
        expect(err.message).not.toContain('api key');
      } finally {
        await fake.close();
      }
    }
  });

  it('the preflight returns no secret from a task title or the version, even from a process that did not register it', async () => {
    const fake = await startFakeInfrahub({
      token: TOKEN,
      version: `1.5.0 (api key ${TOKEN})`,
      script: () => [
        task(7, 'RUNNING', `Webhook https://hooks.example.com/?key=${TOKEN}`, {
          createdAt: new Date(Date.now() - 48 * 3600e3),
        }),
        task(8, 'RUNNING', `Sync ${TOKEN.toUpperCase()}`, { createdAt: new Date(Date.now() - 48 * 3600e3) }),
      ],
    });
    try {
      const logs: string[] = [];
      const out = await preflight(
        {
          target: 'infrahub-prod',
          backupId: 'infrahub_backup_20261121_030000',
          infrahub: { address: fake.address, tokenSecret: 'infrahub/token' },
          maxWaitSeconds: 1,
          pollIntervalSeconds: 1,
          staleTaskHours: 6,
        },
        {
          secrets: secretsAnswering(JSON.stringify({ token: TOKEN })) as SecretsManagerClient,
          logger: createLogger({}, { write: (l) => logs.push(l) }),
        },
      );
      expect(out.infrahubVersion).toBe('unknown');
      expect(out.warnings.length).toBe(2);
      expect(out.target).toBe('infrahub-prod');
      const text = JSON.stringify(out);
      expect(leaked(text, TOKEN), text).toEqual([]);
      expect(leaked(logs.join('\n'), TOKEN)).toEqual([]);
      // The notify Lambda on AWS never read the token: what it receives is already clean, and the
      // ?key=... of a URL is removed by name in any process anyway.
      forgetSecrets();
      expect(redactText(`see https://hooks.example.com/?key=${TOKEN}&x=1`)).toBe(
        `see https://hooks.example.com/?key=${REDACTED}&x=1`,
      );
    } finally {
      await fake.close();
    }
  });

  it('the Lambda wrapper redacts the string leaves of outputs, keeping identifiers and numbers', async () => {
    registerSecret(TOKEN);
    const f = lambdaHandler(async () => ({
      target: 'infrahub-prod',
      backupId: 'infrahub_backup_20261121_030000',
      bytes: 2048,
      note: [`version 1.5 ${TOKEN.toUpperCase()}`],
    }));
    expect(await f()).toEqual({
      target: 'infrahub-prod',
      backupId: 'infrahub_backup_20261121_030000',
      bytes: 2048,
      note: [`version 1.5 ${REDACTED}`],
    });
  });
});

describe('credentials outside URL userinfo', () => {
  it('infrahub.address refuses a query, a fragment and path parameters, naming what is refused', () => {
    for (const address of [
      'https://infrahub.example.com/?token=query-secret-88',
      'https://infrahub.example.com/#token=frag-secret-99',
      'https://infrahub.example.com/path;jsessionid=sess-secret-11',
      'https://infrahub.example.com/?',
    ]) {
      const r = InfrahubApiSchema.safeParse({ address, tokenSecret: 'x/y' });
      expect(r.success, address).toBe(false);
      const messages = r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') ?? '';
      expect(messages).toMatch(
        /address: .*a query \("\?\.\.\."\), a fragment \("#\.\.\."\) or path parameters/,
      );
      expect(messages).not.toMatch(/secret-\d\d/);
    }
    expect(
      InfrahubApiSchema.safeParse({ address: 'https://infrahub.example.com/', tokenSecret: 'x/y' }).success,
    ).toBe(true);
  });

  it('redactText removes values of parameters, keywords and headers named like credentials, registered or not', () => {
    const cases: [string, string][] = [
      [
        'https://i.example.com/graphql?token=query-secret-88',
        `https://i.example.com/graphql?token=${REDACTED}`,
      ],
      [
        'https://i.example.com/#access_token=frag-secret-99&x=1',
        `https://i.example.com/#access_token=${REDACTED}&x=1`,
      ],
      ['https://i.example.com/p;jsessionid=sess-secret-11', `https://i.example.com/p;jsessionid=${REDACTED}`],
      [
        'GET https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F1&X-Amz-Date=20261121&X-Amz-Signature=abc123def',
        `GET https://b.s3.amazonaws.com/k?X-Amz-Credential=${REDACTED}&X-Amz-Date=20261121&X-Amz-Signature=${REDACTED}`,
      ],
      [
        'host=db user=prefect password=kw-secret-77 dbname=prefect',
        `host=db user=prefect password=${REDACTED} dbname=prefect`,
      ],
      ["host=db password='kw secret 78' dbname=prefect", `host=db password=${REDACTED} dbname=prefect`],
      ['api_key=k-123456789 and apikey = k-98765', `api_key=${REDACTED} and apikey = ${REDACTED}`],
      ['Authorization: Bearer eyJhbGciOi.x.y', `Authorization: Bearer ${REDACTED}`],
      ['X-INFRAHUB-KEY: 1234-abcd', `X-INFRAHUB-KEY: ${REDACTED}`],
    ];
    for (const [input, expected] of cases) expect(redactText(input), input).toBe(expected);
  });

  it('the URL userinfo scrubber takes the whole userinfo, whatever the password holds', () => {
    const cases: [string, string][] = [
      [
        'postgresql://prefect:p@ss-word-9@db.internal/prefect',
        `postgresql://${REDACTED}@db.internal/prefect`,
      ],
      [
        'postgresql://prefect:pa/ss-word-9@db.internal/prefect',
        `postgresql://${REDACTED}@db.internal/prefect`,
      ],
      [
        'postgresql://prefect:pa#ss-word-9@db.internal/prefect',
        `postgresql://${REDACTED}@db.internal/prefect`,
      ],
      [
        'postgresql://prefect:pa?ss-word-9@db.internal/prefect x',
        `postgresql://${REDACTED}@db.internal/prefect x`,
      ],
      ['{"u":"http:\\/\\/admin:pw-in-php-json@host\\/x"}', `{"u":"http:\\/\\/${REDACTED}@host\\/x"}`],
      ['neo4j+s://neo4j:pw-aura-99@x.databases.neo4j.io', `neo4j+s://${REDACTED}@x.databases.neo4j.io`],
      [
        'bolt://neo4j:pw@db:7687 and postgresql://u:p@h/db',
        `bolt://${REDACTED}@db:7687 and postgresql://${REDACTED}@h/db`,
      ],
    ];
    for (const [input, expected] of cases) expect(redactText(input), input).toBe(expected);
    expect(redactText('mail ops@example.com about https://example.com/a@b')).toBe(
      'mail ops@example.com about https://example.com/a@b',
    );
  });
});

describe('redaction keeps what programs read intact', () => {
  it('log lines stay JSON: numbers are not rewritten, escapes are not broken', () => {
    registerSecret('20482048');
    registerSecret('nabcdefgh');
    const lines: string[] = [];
    const log = createLogger({ target: 'infrahub-prod' }, { write: (l) => lines.push(l) });
    log.info('uploaded', { bytes: 20482048, parts: 1, note: 'n 20482048' });
    log.info('x\nabcdefgh');
    log.info('x\nnabcdefgh');
    const first = JSON.parse(lines[0] ?? '');
    expect(first).toMatchObject({
      bytes: 20482048,
      parts: 1,
      note: `n ${REDACTED}`,
      target: 'infrahub-prod',
    });
    // The secret is not in "x<newline>abcdefgh" (only in its JSON text, across the escape): unchanged, valid.
    expect(JSON.parse(lines[1] ?? '').message).toBe('x\nabcdefgh');
    expect(JSON.parse(lines[2] ?? '').message).toBe(`x\n${REDACTED}`);
  });

  it('the notice Detail stays JSON with its numbers and target', async () => {
    registerSecret('20482048');
    const details: string[] = [];
    await deliverNotice(
      {
        sns: { send: async () => ({}) } as never,
        topicArns: [],
        events: {
          send: async (c: { input: { Entries: { Detail: string }[] } }) => {
            details.push(c.input.Entries[0]?.Detail ?? '');
            return { FailedEntryCount: 0 };
          },
        } as never,
        // No bucket: the markers are neither read nor written, which never stops a notice.
        s3: {
          send: async () => {
            throw new Error('no S3 here');
          },
        } as never,
        bucket: 'b',
        logger: createLogger({}, { write: () => undefined }),
      },
      {
        requestId: '00000000-0000-8000-8000-000000000000',
        subject: 's',
        lines: ['x'],
        detailType: 'Infrahub Backup Succeeded',
        detail: { target: 't', files: 3, bytes: 20482048, forced: false, why: 'x\n20482048' },
        metrics: [],
        now: new Date(),
      },
    );
    expect(JSON.parse(details[0] ?? '')).toEqual({
      target: 't',
      files: 3,
      bytes: 20482048,
      forced: false,
      why: `x\n${REDACTED}`,
      requestId: '00000000-0000-8000-8000-000000000000',
    });
  });

  it("an error's name is never rewritten, whatever secret is registered", async () => {
    registerSecret('StorageError');
    registerSecret('StorageErr');
    const f = lambdaHandler(async () => {
      throw new StorageError('upload failed: StorageError');
    });
    const err = await rejection(f());
    expect(err.name).toBe('StorageError');
    expect(err).toBeInstanceOf(StorageError);
  });

  it('CLI JSON output stays JSON', () => {
    registerSecret('nabcdefgh');
    const line = JSON.stringify(
      { target: 't', message: 'x\nabcdefgh', other: 'x\nnabcdefgh', n: 1 },
      null,
      2,
    );
    const out = redactJsonOrText(line);
    expect(JSON.parse(out)).toEqual({ target: 't', message: 'x\nabcdefgh', other: `x\n${REDACTED}`, n: 1 });
    expect(out.split('\n').length).toBe(line.split('\n').length);
  });
});

describe('secrets that cannot be redacted are not registered, and readSecret says so', () => {
  it('too short (under 8 characters) or equal to a public name: returned, not registered, warned about', async () => {
    const warnings: string[] = [];
    const warn = (m: string) => warnings.push(m);
    expect(await readSecret(secretsAnswering('abc1234'), 'x/token', 'token', { warn })).toBe('abc1234');
    expect(redactText('abc1234')).toBe('abc1234');
    expect(warnings[0]).toMatch(
      /x\/token: its value is not redacted from messages because it is shorter than 8 characters/,
    );
    expect(warnings[0]).not.toContain('abc1234');
    expect(
      await readSecret(secretsAnswering('infrahub-prod'), 'x/token', 'token', {
        warn,
        publicNames: ['infrahub-prod'],
      }),
    ).toBe('infrahub-prod');
    expect(redactText('target infrahub-prod')).toBe('target infrahub-prod');
    expect(warnings[1]).toMatch(/equals a name that appears in messages by design/);
    // A database password equal to its own secret's database name.
    const db = JSON.stringify({ username: 'prefect', password: 'prefectdb', dbname: 'prefectdb' });
    expect(await readSecret(secretsAnswering(db), 'db', 'password', { warn })).toBe('prefectdb');
    expect(redactText('database prefectdb')).toBe('database prefectdb');
    expect(warnings[2]).toMatch(/"password" field is not redacted/);
    expect(registerSecret('abc')).toBe(false);
    expect(redactText('password abc refused')).toBe('password abc refused');
  });
});

describe('text is redacted before it is cut', () => {
  const PW = `LongPw-${'x'.repeat(40)}-CANARYTAIL`;

  it('firstLine of a readiness error', () => {
    registerSecret(PW);
    const msg = `FATAL: ${'connection rejected by pgbouncer auth_query for pool prefect; '.repeat(4)}password "${PW}" refused`;
    const line = firstLine(new Error(msg));
    expect(line.length).toBeLessThanOrEqual(300);
    expect(line).not.toContain('CANARY');
    expect(line).not.toContain('xxxxxxxx');
  });

  it("excerpt and the notices' clip", () => {
    registerSecret(PW);
    const text = `${'a'.repeat(280)} ${PW} end`;
    for (const cut of [excerpt(text, 300), clip(text, 300)]) {
      expect(cut).not.toContain('xxxxxxxx');
      expect(cut).not.toContain('LongPw');
    }
  });

  it("a tool's standard error, longer than the kept window, cut inside the password", async () => {
    registerSecret(PW);
    // One line: the secret, then 64 KiB - 10 characters, so a 64 KiB window starts inside the secret.
    const script = `process.stderr.write(${JSON.stringify(PW)} + 'y'.repeat(65536 - 10)); process.exit(3)`;
    const tool = runTool(process.execPath, ['-e', script], { name: 'fake-tool' });
    const err = await rejection(tool.done);
    expect(err.name).toBe('ToolFailed');
    expect(err.message).not.toContain('CANARYTAIL');
    expect(tool.stderrTail()).not.toContain('CANARYTAIL');
  });
});

describe('readSecret shapes', () => {
  it('a JSON string is its inner value, registered', async () => {
    expect(await readSecret(secretsAnswering('"my-json-string-token"'), 'x', 'token')).toBe(
      'my-json-string-token',
    );
    expect(redactText('my-json-string-token')).toBe(REDACTED);
  });

  it('an array, a number or a boolean where a value is expected is SecretInvalid, the content not shown', async () => {
    for (const [text, field] of [
      ['["prefect","arr-pass-123"]', 'password'],
      ['[]', 'token'],
      ['{"username":"prefect","password":12345678}', 'password'],
      ['{"username":"prefect","password":true}', 'password'],
      ['{"username":"prefect","password":["arr-pass-456"]}', 'password'],
    ] as const) {
      const err = await rejection(readSecret(secretsAnswering(text), 'db/x', field));
      expect(err.name, text).toBe('SecretInvalid');
      expect(err.message).not.toMatch(/arr-pass|12345678|prefect/);
    }
    expect(redactText('arr-pass-123')).toBe(REDACTED);
  });

  it('malformed JSON: its values are registered, not its structure, so the message naming the shape is intact', async () => {
    const err = await rejection(
      readSecret(
        secretsAnswering('{"username": "prefect", "password": bad-pass-123, "token": my-token-value-9}'),
        'db/x',
        'password',
      ),
    );
    expect(err.name).toBe('SecretInvalid');
    expect(err.message).toBe(
      'secret db/x is not valid JSON (expected {"username": "...", "password": "..."}); its content is not shown',
    );
    expect(redactError(err).message).toBe(err.message);
    expect(redactText('bad-pass-123 my-token-value-9')).toBe(`${REDACTED} ${REDACTED}`);
    expect(redactText('{"username": "x", "password": "y"}')).toBe('{"username": "x", "password": "y"}');
  });

  it('a leading UTF-8 byte-order mark is dropped', async () => {
    expect(
      await readSecret(
        secretsAnswering('\uFEFF{"username":"prefect","password":"bom-pass-123"}'),
        'db',
        'password',
      ),
    ).toBe('bom-pass-123');
    expect(redactText('bom-pass-123')).toBe(REDACTED);
    expect(await readSecret(secretsAnswering('\uFEFFplain-token-77'), 'x', 'token')).toBe('plain-token-77');
  });
});
