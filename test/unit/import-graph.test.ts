/**
 * The product's module boundaries (issue 17, item 4), checked on its import graph:
 * - no import cycle: a cycle makes a module's exports undefined while the other one initialises (an
 *   ES module evaluation order problem that shows only at run time, in whichever entry point happens
 *   to load the cycle first), and is the mark of two modules doing one job;
 * - the Lambdas' folders stay thin and apart: `functions/<name>/` imports the core and the shared
 *   `functions/handler.ts`, `env.ts`, `tracing.ts`, never another Lambda's folder;
 * - the CLI reaches the Lambdas' steps through one module, `functions/steps.ts`.
 * madge builds the graph with TypeScript's own module resolution (tsconfig.json: `.js` specifiers
 * resolve to the `.ts` files); `import type` declarations are left out, as they vanish from the
 * emitted JavaScript.
 */
import { existsSync, readdirSync } from 'node:fs';
import madge from 'madge';
import { beforeAll, describe, expect, it } from 'vitest';
import { LAMBDA_NAMES, lambdaFolder } from '../../functions/steps.js';
import { scaled } from '../../harness/time-scale.js';

const PRODUCT = ['core', 'functions', 'cli', 'containers', 'infra'];
const SHARED = ['functions/handler.ts', 'functions/env.ts', 'functions/tracing.ts'];

let graph: Awaited<ReturnType<typeof madge>>;
let deps: Record<string, string[]>;

describe('import graph of the product code', () => {
  beforeAll(async () => {
    graph = await madge(PRODUCT, {
      fileExtensions: ['ts'],
      tsConfig: 'tsconfig.json',
      detectiveOptions: { ts: { skipTypeImports: true } },
    });
    deps = graph.obj();
  }, scaled(60_000));

  it('is the whole product, resolved', () => {
    // A graph of nothing has no cycle either.
    expect(Object.keys(deps).length).toBeGreaterThan(100);
    expect(deps['core/backup/seal.ts']).toContain('core/backup/verify.ts');
  });

  it('has no cycle', () => {
    expect(graph.circular()).toEqual([]);
  });

  it("keeps each Lambda's folder to the core and the shared handler modules", () => {
    const crossing = Object.entries(deps).flatMap(([file, imports]) => {
      const folder = /^functions\/([^/]+)\//.exec(file)?.[1];
      if (!folder) return [];
      return imports
        .filter(
          (d) => d.startsWith('functions/') && !SHARED.includes(d) && !d.startsWith(`functions/${folder}/`),
        )
        .map((d) => `${file} -> ${d}`);
    });
    expect(crossing).toEqual([]);
  });

  it('gives the CLI one entry to the Lambdas: functions/steps.ts', () => {
    const reached = Object.entries(deps).flatMap(([file, imports]) =>
      file.startsWith('cli/')
        ? imports
            .filter((d) => d.startsWith('functions/') && d !== 'functions/steps.ts')
            .map((d) => `${file} -> ${d}`)
        : [],
    );
    expect(reached).toEqual([]);
  });
});

describe('functions/steps.ts', () => {
  it('names every Lambda folder, each with its handler', () => {
    const folders = readdirSync('functions', { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    expect([...LAMBDA_NAMES].map(lambdaFolder).sort()).toEqual(folders);
    for (const name of LAMBDA_NAMES)
      expect(existsSync(`functions/${lambdaFolder(name)}/index.ts`), name).toBe(true);
  });
});
