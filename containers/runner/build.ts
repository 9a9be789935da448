/**
 * Bundles the runner entrypoint into one ESM file for the image (`npm run build:runner`).
 * The Dockerfile runs the same build in its first stage.
 */
import { build } from 'esbuild';

export const RUNNER_ENTRY = 'containers/runner/src/cli.ts';
export const RUNNER_BUNDLE = 'dist/runner/runner.mjs';

export async function buildRunner(outfile = RUNNER_BUNDLE): Promise<void> {
  await build({
    entryPoints: [RUNNER_ENTRY],
    outfile,
    bundle: true,
    platform: 'node',
    // Lambda and the image run Node 22; Node 20 runs it here.
    target: 'node20',
    format: 'esm',
    // An external map: an inline one doubles what Node parses and keeps in memory.
    sourcemap: 'linked',
    // pg's optional native binding is never used.
    external: ['pg-native'],
    // Bundled CommonJS dependencies call require().
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await buildRunner(process.argv[2]);
  console.log(`runner bundled into ${process.argv[2] ?? RUNNER_BUNDLE}`);
}
