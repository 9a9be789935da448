import { CreateSecretCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/log.js';
import { preflight } from '../../functions/preflight/preflight.js';
import { type FakeInfrahub, startFakeInfrahub, task } from '../../harness/fake-infrahub-api.js';
import { type S3Server, startS3 } from '../../harness/index.js';
import { fakeClock } from '../helpers/clock.js';

const logger = createLogger({}, { write: () => undefined });

// The Lambda core with a real Secrets Manager API (moto) and a fake Infrahub API, both on loopback.
describe('preflight Lambda core', () => {
  let aws: S3Server;
  let secrets: SecretsManagerClient;
  let infrahub: FakeInfrahub;
  let busy = false;

  beforeAll(async () => {
    aws = await startS3();
    secrets = aws.secretsManager();
    infrahub = await startFakeInfrahub({
      token: 'tok-123',
      script: () => (busy ? [task(1, 'RUNNING', 'Rebase branch')] : []),
    });
    await secrets.send(
      new CreateSecretCommand({ Name: 'lab/infrahub-json', SecretString: '{"token": "tok-123"}' }),
    );
    await secrets.send(new CreateSecretCommand({ Name: 'lab/infrahub-plain', SecretString: 'tok-123\n' }));
  });

  afterAll(async () => {
    await infrahub?.close();
    await aws?.stop();
  });

  const event = (extra: Record<string, unknown> = {}) => ({
    target: 'infrahub-lab',
    backupId: 'infrahub_backup_20261121_020000',
    infrahub: { address: infrahub.address, tokenSecret: 'lab/infrahub-json' },
    ...extra,
  });

  it('reads the token from Secrets Manager (JSON or plain text) and passes when Infrahub is idle', async () => {
    busy = false;
    expect(await preflight(event(), { secrets, logger })).toEqual({
      target: 'infrahub-lab',
      backupId: 'infrahub_backup_20261121_020000',
      forced: false,
      waitedSeconds: 0,
      polls: 1,
      infrahubVersion: '1.5.0',
    });
    const plain = event({ infrahub: { address: infrahub.address, tokenSecret: 'lab/infrahub-plain' } });
    expect((await preflight(plain, { secrets, logger })).polls).toBe(1);
    expect(infrahub.requests.every((r) => r.token === 'tok-123')).toBe(true);
  });

  it('never waits past the cap the Lambda gives it', async () => {
    busy = true;
    const attempt = preflight(event({ maxWaitSeconds: 600, pollIntervalSeconds: 10 }), {
      secrets,
      logger,
      maxWaitSecondsCap: 30,
      clock: fakeClock(),
    });
    await expect(attempt).rejects.toMatchObject({
      name: 'InfrahubBusy',
      message: expect.stringMatching(/waits up to 30 s.*"Rebase branch"/),
    });
  });

  it('skips the gate with force, without reading the secret', async () => {
    busy = true;
    const forced = event({
      force: true,
      infrahub: { address: infrahub.address, tokenSecret: 'no/such/secret' },
    });
    expect(await preflight(forced, { secrets, logger })).toMatchObject({
      forced: true,
      polls: 0,
      infrahubVersion: 'unknown',
    });
  });

  it('rejects a malformed event, naming the fields', async () => {
    const attempt = preflight(
      { target: 'Infrahub Lab', infrahub: { address: 'ftp://x' } },
      { secrets, logger },
    );
    await expect(attempt).rejects.toMatchObject({ name: 'InvalidInput' });
    await expect(attempt).rejects.toThrow(
      /target: must be 2-40 characters[\s\S]*backupId: is required[\s\S]*infrahub\.address: must be an http\(s\) URL[\s\S]*infrahub\.tokenSecret: is required/,
    );
  });
});
