import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger, redactLogRecord } from '../../core/log.js';
import { forgetSecrets, REDACTED, registerSecret } from '../../core/redact.js';

const SECRET = 'pg-Xq7vW-9f2e41c7aa';

afterEach(() => forgetSecrets());

/** What an SDK call's error carries: a class instance with the server's answer in a field. */
class ServiceError extends Error {
  override name = 'ServiceError';
  body: string;
  constructor(message: string, body: string, cause?: unknown) {
    super(message, { cause });
    this.body = body;
  }
}

class Answer {
  constructor(readonly text: string) {}
}

function logEverywhere(log: ReturnType<typeof createLogger>) {
  const circular: Record<string, unknown> = { note: `again ${SECRET}` };
  circular.self = circular;
  log.error(`connecting with ${SECRET}`, {
    password: 'not-registered-but-a-password',
    nested: { PGPASSWORD: 'x', apiToken: 'y', dsn: 'postgresql://backup:hunter2hunter2@db:5432/infrahub' },
    error: new ServiceError(
      `refused ${SECRET}`,
      `{"detail":"bad token ${SECRET}"}`,
      new Error(`cause ${SECRET.toUpperCase()}`),
    ),
    answer: new Answer(`echo ${SECRET}`),
    [`key-${SECRET}`]: 1,
    circular,
    bytes: 20482048n,
    target: 'infrahub-prod',
    backupId: 'infrahub_backup_20261121_020000',
  });
}

describe('core/log.ts: Powertools Logger with core/redact.ts as its JSON replacer', () => {
  it('a secret logged through the process logger (Powertools console, standard error for ERROR) is redacted', () => {
    registerSecret(SECRET);
    const written: string[] = [];
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      logEverywhere(createLogger({ service: 'log-test-process' }));
    } finally {
      stderr.mockRestore();
    }
    const text = written.join('');
    const entry = JSON.parse(text.trim()) as Record<string, unknown>;
    expect(entry).toMatchObject({
      level: 'ERROR',
      message: `connecting with ${REDACTED}`,
      service: 'log-test-process',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      password: REDACTED,
      nested: {
        PGPASSWORD: REDACTED,
        apiToken: REDACTED,
        dsn: `postgresql://${REDACTED}@db:5432/infrahub`,
      },
      error: {
        name: 'ServiceError',
        message: `refused ${REDACTED}`,
        body: `{"detail":"bad token ${REDACTED}"}`,
        stack: expect.stringContaining(`ServiceError: refused ${REDACTED}`),
        cause: { name: 'Error', message: `cause ${REDACTED}` },
      },
      answer: { text: `echo ${REDACTED}` },
      [`key-${REDACTED}`]: 1,
      circular: { note: `again ${REDACTED}` },
      bytes: '20482048',
      target: 'infrahub-prod',
      backupId: 'infrahub_backup_20261121_020000',
    });
    expect(text).not.toContain(SECRET);
    expect(text.toLowerCase()).not.toContain(SECRET.toLowerCase());
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('not-registered');
  });

  it('the same through a `write` sink, one line per call, with the context of child loggers', () => {
    registerSecret(SECRET);
    const lines: string[] = [];
    const log = createLogger({ service: 'log-test-sink', target: 'lab' }, { write: (l) => lines.push(l) });
    logEverywhere(log.child({ step: 'restore' }));
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain(SECRET);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      level: 'ERROR',
      service: 'log-test-sink',
      step: 'restore',
      target: 'infrahub-prod',
      message: `connecting with ${REDACTED}`,
    });
  });

  it('writes lines at or above its level only', () => {
    const lines: string[] = [];
    const log = createLogger({}, { level: 'warn', write: (l) => lines.push(l) });
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    expect(lines.map((l) => JSON.parse(l).level)).toEqual(['WARN', 'ERROR']);
  });

  it('the replacer redacts the record once, at its root, and returns its members as they are', () => {
    registerSecret(SECRET);
    const record = { message: SECRET, nested: { a: SECRET } };
    const out = redactLogRecord('', record) as typeof record;
    expect(out).toEqual({ message: REDACTED, nested: { a: REDACTED } });
    // Members (passed by JSON.stringify after the root) are already redacted: not walked again.
    expect(redactLogRecord('', out)).toBe(out);
    expect(redactLogRecord('nested', record.nested)).toBe(record.nested);
  });

  it('never throws: a getter that throws is written as [unserialisable]; Powertools keys are kept at the top level only', () => {
    registerSecret(SECRET);
    const hostile = {
      get body(): string {
        throw new Error('no');
      },
    };
    expect(
      redactLogRecord('', { message: 'm', service: 'svc', answer: hostile, nested: { service: SECRET } }),
    ).toEqual({ message: 'm', service: 'svc', answer: '[unserialisable]', nested: { service: REDACTED } });
  });
});
