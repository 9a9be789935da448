import { type AddressInfo, createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { HarnessStartError, startNeo4j, startPostgres } from '../../harness/index.js';
import { testTempDir } from '../helpers/temp.js';

// A service that cannot start must fail the test run with a message naming it and the reason,
// never let a test skip silently.
describe('harness start-up failures', () => {
  it('names PostgreSQL and the missing initdb', async () => {
    const emptyDir = testTempDir('no-pg-');
    const attempt = startPostgres({ binDir: emptyDir });
    await expect(attempt).rejects.toBeInstanceOf(HarnessStartError);
    await expect(attempt).rejects.toThrow(/^PostgreSQL harness could not start: initdb not found in /);
  });

  it('names Neo4j and tells how to fetch jars that are not there', async () => {
    const attempt = startNeo4j({ version: '5.26.999' });
    await expect(attempt).rejects.toThrow(
      /^Neo4j harness could not start: the Neo4j 5\.26\.999 jars are not in .*\(run "npm run setup"/,
    );
  });

  it('names Neo4j and the setting it rejected', async () => {
    const attempt = startNeo4j({ pageCache: 'lots' });
    await expect(attempt).rejects.toThrow(
      /^Neo4j harness could not start: neo4j-admin dbms set-initial-password failed/,
    );
    await expect(attempt).rejects.toThrow(/'lots' is not a valid size/);
  });

  it('names Neo4j and shows its log when the server dies during start-up', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;
    try {
      const attempt = startNeo4j({ boltPort: port });
      await expect(attempt).rejects.toThrow(
        /^Neo4j harness could not start: the process exited during start-up/,
      );
      await expect(attempt).rejects.toThrow(/last log lines[\s\S]*(Address already in use|bind)/i);
    } finally {
      blocker.close();
    }
  });
});
