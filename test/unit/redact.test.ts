/**
 * core/redact.ts and where it is applied without a server: the logger, the Lambda handler wrapper,
 * the runner's environment parsing, readSecret's parsing (a Secrets Manager client answering a
 * GetSecretValue with a fixed SecretString), and the refusal of URLs with userinfo in the
 * configuration, the preflight event and the runner's environment. The channels with real servers
 * (moto, the runner process, an echoing API and database) are in
 * test/integration/secrets-redaction.test.ts.
 */
import { readFileSync } from 'node:fs';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterEach, describe, expect, it } from 'vitest';
import { Neo4jCountsEnvSchema, PostgresEnvSchema, parseEnv } from '../../containers/runner/src/env.js';
import { parseDeploymentConfig, parseInput } from '../../core/config/load.js';
import { ConfigError, ErrorNames, InfrahubApiError, InvalidInputError } from '../../core/errors.js';
import { PreflightEventSchema } from '../../core/infrahub/preflight.js';
import { listTasks } from '../../core/infrahub/tasks.js';
import { createLogger } from '../../core/log.js';
import {
  encodings,
  forgetSecrets,
  REDACTED,
  redactError,
  redactText,
  redactValue,
  registeredSecretCount,
  registerSecret,
  registerSecretsFromEnv,
} from '../../core/redact.js';
import { readSecret } from '../../core/secrets.js';
import { lambdaHandler } from '../../functions/handler.js';
import { startFakeInfrahub } from '../../harness/fake-infrahub-api.js';

afterEach(() => forgetSecrets());

/** What `promise` rejects with; a promise that resolves fails the test. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

const CANARY = 'CANARY-unit-4e9d/+"x y';

/** A Secrets Manager client that answers every GetSecretValue with `text`. */
const secretsAnswering = (text: string | undefined) =>
  ({ send: async () => ({ SecretString: text }) }) as unknown as Pick<SecretsManagerClient, 'send'>;

describe('redactText', () => {
  it('replaces a registered value as is and in every encoding it may travel in', () => {
    registerSecret(CANARY);
    for (const form of encodings(CANARY)) {
      const out = redactText(`before ${form} after`);
      expect(out, form).toBe(`before ${REDACTED} after`);
    }
    // Including inside JSON inside JSON inside JSON (an error message in a Lambda Cause in a history event).
    const nested = JSON.stringify({ Cause: JSON.stringify({ errorMessage: `token ${CANARY} refused` }) });
    expect(JSON.stringify(nested)).toContain('CANARY-unit');
    expect(redactText(JSON.stringify(nested))).not.toContain('CANARY-unit');
    expect(redactText(Buffer.from(CANARY).toString('base64'))).toBe(REDACTED);
    expect(redactText(encodeURIComponent(CANARY))).toBe(REDACTED);
  });

  it('removes the userinfo of any URL, registered or not, and leaves other text alone', () => {
    expect(redactText('GET http://admin:s3cret@infrahub.internal/graphql failed')).toBe(
      `GET http://${REDACTED}@infrahub.internal/graphql failed`,
    );
    expect(redactText('bolt://neo4j:pw@db:7687 and postgresql://u:p@h/db')).toBe(
      `bolt://${REDACTED}@db:7687 and postgresql://${REDACTED}@h/db`,
    );
    expect(redactText('mail ops@example.com about https://example.com/a@b')).toBe(
      'mail ops@example.com about https://example.com/a@b',
    );
  });

  it('ignores values too short to be secrets, so messages are not garbled', () => {
    registerSecret('pw');
    registerSecret('');
    registerSecret(undefined);
    expect(registeredSecretCount()).toBe(0);
    expect(redactText('pwd and pw')).toBe('pwd and pw');
  });

  it('registers the credentials of an environment by variable name', () => {
    registerSecretsFromEnv({
      PGPASSWORD: 'pg-secret-1',
      NEO4J_PASSWORD: 'neo-secret-2',
      AWS_SECRET_ACCESS_KEY: 'aws-secret-3',
      AWS_SESSION_TOKEN: 'aws-token-4',
      PGUSER: 'prefect',
      TARGET: 'infrahub-prod',
    });
    expect(redactText('pg-secret-1 neo-secret-2 aws-secret-3 aws-token-4 prefect infrahub-prod')).toBe(
      `${REDACTED} ${REDACTED} ${REDACTED} ${REDACTED} prefect infrahub-prod`,
    );
  });

  it('redacts errors in place: class, name and fields kept, message, stack, cause and fields cleaned', () => {
    registerSecret(CANARY);
    const cause = new Error(`inner ${CANARY}`);
    const err = new InfrahubApiError(`HTTP 401: {"message": "bad token ${CANARY}"}`, 401);
    Object.assign(err, { body: `echo ${CANARY}` });
    (err as Error).cause = cause;
    const out = redactError(err);
    expect(out).toBe(err);
    expect(out).toBeInstanceOf(InfrahubApiError);
    expect(out.name).toBe(ErrorNames.InfrahubApiError);
    expect((out as InfrahubApiError).status).toBe(401);
    const all = `${out.message}\n${out.stack}\n${(out.cause as Error).message}\n${(out as unknown as { body: string }).body}`;
    expect(all).not.toContain('CANARY-unit');
    expect(out.message).toContain(REDACTED);
    // Anything thrown that is not an Error.
    expect(redactError(`raw ${CANARY}`).message).toBe(`raw ${REDACTED}`);
  });

  it('redacts every string of a plain value, keys included', () => {
    registerSecret(CANARY);
    expect(redactValue({ a: [`x ${CANARY}`, 3, null], [CANARY]: true })).toEqual({
      a: [`x ${REDACTED}`, 3, null],
      [REDACTED]: true,
    });
  });
});

describe('Infrahub API errors', () => {
  it('quote no part of the answer that refused the token, so no part of an echoed token survives', async () => {
    const fake = await startFakeInfrahub({ script: () => [], echoRejectedToken: true });
    try {
      // Long enough that the 300-character excerpt of the 401 body ends inside the echoed token.
      const token = `CANARY-long-${'k'.repeat(20)}${'0123456789'.repeat(30)}`;
      const err = await rejection(listTasks({ address: fake.address, token }));
      expect(err.name).toBe('InfrahubApiError');
      // A refusal of the token is not quoted at all: status and a fixed explanation only.
      expect(err.message).toMatch(/HTTP 401 \(the API token was refused\).*the answer is not shown/);
      expect(err.message).not.toContain('CANARY-long');
    } finally {
      await fake.close();
    }
  });
});

describe('logger', () => {
  it('never writes a registered secret, whatever field or message carries it', () => {
    const lines: string[] = [];
    const log = createLogger({ service: 't' }, { write: (l) => lines.push(l) });
    registerSecret(CANARY);
    log.warn(`could not read the version: ${CANARY}`, {
      error: String(new Error(`HTTP 401 ${CANARY}`)),
      nested: { deep: [CANARY] },
      url: 'http://user:pw-in-url@host/x',
    });
    const text = lines.join('\n');
    expect(text).not.toContain('CANARY-unit');
    expect(text).not.toContain('pw-in-url');
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({
      message: `could not read the version: ${REDACTED}`,
    });
  });
});

describe('Lambda handler wrapper', () => {
  it('rethrows the same error, name kept for Retry/Catch, with secrets redacted; outputs redacted but identifiers kept', async () => {
    registerSecret(CANARY);
    const failing = lambdaHandler(async (_event: unknown) => {
      throw new InfrahubApiError(`Infrahub API answered HTTP 401: ${CANARY}`, 401);
    });
    const thrown = await rejection(failing({}));
    expect(thrown).toBeInstanceOf(InfrahubApiError);
    expect(thrown.name).toBe('InfrahubApiError');
    expect(thrown.message).toBe(`Infrahub API answered HTTP 401: ${REDACTED}`);
    // Outputs: string leaves redacted (a server's text a function returns), numbers untouched, and
    // identifiers we generate (target, backupId) kept; a value too short to be a secret, or equal to
    // a public name, is never registered, so a database name equal to a weak password is unchanged.
    registerSecret('prefect');
    const ok = lambdaHandler(async () => ({
      database: 'prefect',
      n: 1,
      version: `1.5 ${CANARY}`,
      target: `t-${CANARY}`,
    }));
    expect(await ok()).toEqual({
      database: 'prefect',
      n: 1,
      version: `1.5 ${REDACTED}`,
      target: `t-${CANARY}`,
    });
  });
});

describe('readSecret', () => {
  it('fails malformed JSON with SecretInvalid naming the secret and the shape, never quoting the content', async () => {
    const text = `{"username": "prefect", "password": ${CANARY}}`;
    // What it replaces: Node's own message quotes the text around the fault.
    expect(() => JSON.parse(text)).toThrow(/CANARY-un/);
    const err = await rejection(readSecret(secretsAnswering(text), 'prod/prefect-postgres', 'password'));
    expect(err.name).toBe(ErrorNames.SecretInvalid);
    expect(err.message).toBe(
      'secret prod/prefect-postgres is not valid JSON (expected {"username": "...", "password": "..."}); its content is not shown',
    );
    expect(`${err.message}${err.stack}`).not.toContain('CANARY-un');
    expect(String((err as Error & { cause?: unknown }).cause ?? '')).not.toContain('CANARY-un');
  });

  it('names a missing field without quoting, and registers what it reads', async () => {
    await expect(
      readSecret(secretsAnswering(JSON.stringify({ tok: CANARY })), 'x/token', 'token'),
    ).rejects.toThrow('secret x/token has no "token" field with a text value');
    await expect(readSecret(secretsAnswering(undefined), 'x/token', 'token')).rejects.toMatchObject({
      name: 'SecretInvalid',
    });
    forgetSecrets();
    expect(await readSecret(secretsAnswering(JSON.stringify({ token: CANARY })), 'x/token', 'token')).toBe(
      CANARY,
    );
    expect(redactText(`echo ${CANARY}`)).toBe(`echo ${REDACTED}`);
    forgetSecrets();
    // An RDS-managed secret: the password is registered, the account and location fields are not
    // (they appear in servers' messages by design).
    const rds = JSON.stringify({
      username: 'prefect',
      password: 'pg-pass-77',
      engine: 'postgres',
      host: 'db.internal',
      port: 5432,
      dbname: 'prefect',
    });
    expect(await readSecret(secretsAnswering(rds), 'db', 'username')).toBe('prefect');
    expect(redactText('prefect pg-pass-77 postgres db.internal')).toBe(
      `prefect ${REDACTED} postgres db.internal`,
    );
    // A value asked for by another field name is a credential too.
    expect(
      await readSecret(secretsAnswering(JSON.stringify({ value: 'other-secret-5' })), 'x', 'value'),
    ).toBe('other-secret-5');
    expect(redactText('other-secret-5')).toBe(REDACTED);
    forgetSecrets();
    expect(await readSecret(secretsAnswering(`  plain-token-99 \n`), 'x/token', 'token')).toBe(
      'plain-token-99',
    );
    expect(redactText('plain-token-99')).toBe(REDACTED);
  });
});

describe('URLs with userinfo are refused', () => {
  const example = () => JSON.parse(readFileSync('config/example.json', 'utf8'));

  it('in infrahub.address: the field named, tokenSecret pointed to, the password not quoted', () => {
    const raw = example();
    raw.targets[0].infrahub.address = 'https://admin:pw-in-config-31@infrahub.example.com';
    let error: unknown;
    try {
      parseDeploymentConfig(raw, 'test');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toMatch(/targets\[0\]\.infrahub\.address: must not contain a user name or password/);
    expect(message).toContain('tokenSecret');
    expect(message).not.toContain('pw-in-config-31');
    // A user name alone is refused too; the example itself is accepted.
    raw.targets[0].infrahub.address = 'https://admin@infrahub.example.com';
    expect(() => parseDeploymentConfig(raw, 'test')).toThrow(/infrahub\.address: must not contain/);
    expect(() => parseDeploymentConfig(example(), 'test')).not.toThrow();
    // Host fields take no URL at all, so no credentials either; their values are not quoted back.
    const hosts = example();
    hosts.targets[0].neo4j.host = 'neo4j:pw-in-host-41@neo4j.internal';
    hosts.targets[0].postgres.host = 'prefect:pw-in-host-42@db.internal';
    let hostError: unknown;
    try {
      parseDeploymentConfig(hosts, 'test');
    } catch (e) {
      hostError = e;
    }
    expect((hostError as ConfigError).problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^targets\[0\]\.neo4j\.host: must be a host name/),
        expect.stringMatching(/^targets\[0\]\.postgres\.host: must be a host name/),
      ]),
    );
    expect((hostError as ConfigError).message).not.toMatch(/pw-in-host/);
  });

  it('in the preflight event, and in the runner environment (NEO4J_URI, S3_ENDPOINT)', () => {
    const event = {
      target: 'infrahub-prod',
      backupId: 'infrahub_backup_20261121_020000',
      infrahub: { address: 'http://u:pw-in-event-5@127.0.0.1:8000', tokenSecret: 'x' },
    };
    let err: unknown;
    try {
      parseInput(PreflightEventSchema, event, 'preflight event');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as Error).message).toMatch(/infrahub\.address: must not contain a user name or password/);
    expect((err as Error).message).not.toContain('pw-in-event-5');

    const common = {
      TARGET: 'infrahub-prod',
      BACKUP_ID: 'infrahub_backup_20261121_020000',
      BACKUP_BUCKET: 'bkt',
    };
    const neo4j = () =>
      parseEnv(Neo4jCountsEnvSchema, {
        ...common,
        NEO4J_URI: 'bolt://neo4j:pw-in-uri-6@db:7687',
        NEO4J_PASSWORD: 'x-password',
      });
    expect(neo4j).toThrow(/NEO4J_URI: must not contain a user name or password.*NEO4J_PASSWORD/);
    expect(() =>
      parseEnv(PostgresEnvSchema, {
        ...common,
        S3_ENDPOINT: 'http://key:pw-in-endpoint-7@127.0.0.1:9000',
        PGHOST: 'h',
        PGUSER: 'u',
        PGPASSWORD: 'p-password',
      }),
    ).toThrow(/S3_ENDPOINT: must not contain a user name or password/);
    // parseEnv registered the environment's credentials on the way.
    expect(redactText('x-password p-password')).toBe(`${REDACTED} ${REDACTED}`);
  });
});
