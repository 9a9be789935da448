/**
 * Review of issue 18, item 1: a refresh is often what repairs a broken destination, but reading the
 * destination's deployment id from its stopped store (a read-only server on it) failed the whole
 * refresh when that store could not be opened. Now the destination gets the plan's new id and the
 * reason is recorded (validate-neo4j's reset and the report say it). Here the server cannot start at
 * all (a Neo4j home without bin/neo4j): the same path as a store that will not open.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { communityDeploymentId } from '../../containers/runner/src/components/restore-neo4j.js';
import { createLogger } from '../../core/log.js';
import { testTempDir } from '../helpers/temp.js';

const NEW_ID = '2b0e8f0c-3a57-4d6b-9a41-6a1f7f1f0c11';

describe("a refresh whose destination's store cannot be read", () => {
  it("gives the destination the plan's new deployment id and says why, instead of failing the refresh", async () => {
    const dir = testTempDir('refresh-unreadable-');
    const home = join(dir, 'neo4j-home');
    mkdirSync(join(home, 'conf'), { recursive: true });
    const warnings: string[] = [];
    const logger = createLogger({}, { write: (line: string) => void warnings.push(line) });
    const read = await communityDeploymentId(
      { store: { home, workDir: join(dir, 'work'), readyTimeoutSeconds: 30 }, fallback: NEW_ID },
      ['neo4j'],
      logger,
    );
    expect(read).toMatchObject({ previous: null, value: NEW_ID, how: 'generated' });
    expect(read.unreadable).toEqual(expect.any(String));
    expect(read.unreadable?.length).toBeGreaterThan(0);
    expect(warnings.join('\n')).toMatch(
      /the destination's deployment id could not be read from its stopped store/,
    );
  });
});
