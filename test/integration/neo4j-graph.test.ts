import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureInfrahubShapedStore } from '../../bench/neo4j-graph.js';
import { neo4jVersion, startNeo4j } from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';

// The benchmarks' graph generator (issue 19): a tiny store, its shape checked on the imported graph.
describe('bench/neo4j-graph.ts: an Infrahub-shaped store from neo4j-admin import', () => {
  const cacheRoot = mkdtempSync(join(tmpdir(), 'neo4j-graph-'));
  afterAll(() => rmSync(cacheRoot, { recursive: true, force: true }));

  it(
    'imports 13 vertices and 31 edges per object, in the labels and links of Infrahub, and reuses the store',
    async () => {
      const version = neo4jVersion();
      const store = await ensureInfrahubShapedStore({ neo4jVersion: version, objects: 100, cacheRoot });
      expect(store.reused).toBe(false);
      expect(store.labels).toEqual({
        Node: 100,
        Attribute: 800,
        // 2 values of each object's own, and the shared pool of 64
        AttributeValue: 264,
        Relationship: 200,
        Boolean: 2,
        Root: 1,
      });
      expect(store.nodes).toBe(100 * 13 + 64 + 3);
      expect(store.relationships).toBe(100 * 31);
      expect(store.storeBytes).toBeGreaterThan(0);

      const again = await ensureInfrahubShapedStore({ neo4jVersion: version, objects: 100, cacheRoot });
      expect(again).toEqual({ ...store, reused: true });

      // The cached data folder starts, with the password it recorded, and holds Infrahub's links.
      const neo4j = await startNeo4j({ version, fromDataDir: store.dataDir, password: store.password });
      try {
        const session = neo4j.driver().session({ database: 'neo4j' });
        try {
          const one = async (q: string) => Number((await session.run(q)).records[0]?.get(0));
          expect(
            await one(
              'MATCH (n:Node) WHERE COUNT { (n)-[:HAS_ATTRIBUTE]->(:Attribute) } <> 8 RETURN count(n)',
            ),
          ).toBe(0);
          expect(await one('MATCH (n:Node) WHERE NOT (n)-[:IS_PART_OF]->(:Root) RETURN count(n)')).toBe(0);
          expect(
            await one(
              'MATCH (a:Attribute) WHERE COUNT { (a)-[:HAS_VALUE]->(:AttributeValue) } <> 1 OR COUNT { (a)-[:IS_PROTECTED]->(:Boolean) } <> 1 RETURN count(a)',
            ),
          ).toBe(0);
          expect(
            await one(
              'MATCH (r:Relationship) WHERE COUNT { (r)-[:IS_RELATED]-(:Node) } <> 2 RETURN count(r)',
            ),
          ).toBe(0);
          expect(
            await one(
              "MATCH ()-[e]->() WHERE e.branch <> 'main' OR e.branch_level <> 1 OR e.status <> 'active' OR e.from IS NULL RETURN count(e)",
            ),
          ).toBe(0);
        } finally {
          await session.close();
        }
      } finally {
        await neo4j.stop();
      }
      await expect(ensureInfrahubShapedStore({ neo4jVersion: version, cacheRoot })).rejects.toThrow(
        /either targetBytes or objects/,
      );
    },
    scaled(300_000),
  );
});
