/**
 * No import cycle in the product code (issue 17, item 4): a cycle makes a module's exports undefined
 * while the other one initialises (an ES module evaluation order problem that shows only at run time,
 * in whichever entry point happens to load the cycle first), and is the mark of two modules doing one
 * job. madge builds the import graph with TypeScript's own module resolution (tsconfig.json: `.js`
 * specifiers resolve to the `.ts` files); `import type` declarations are left out, as they vanish
 * from the emitted JavaScript.
 */
import madge from 'madge';
import { describe, expect, it } from 'vitest';

const PRODUCT = ['core', 'functions', 'cli', 'containers', 'infra'];

describe('import graph of the product code', () => {
  it('has no cycle', async () => {
    const graph = await madge(PRODUCT, {
      fileExtensions: ['ts'],
      tsConfig: 'tsconfig.json',
      detectiveOptions: { ts: { skipTypeImports: true } },
    });
    // Every module found and resolved: a graph of nothing has no cycle either.
    expect(Object.keys(graph.obj()).length).toBeGreaterThan(100);
    expect(graph.obj()['core/backup/seal.ts']).toContain('core/backup/verify.ts');
    expect(graph.circular()).toEqual([]);
  }, 60_000);
});
