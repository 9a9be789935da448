/**
 * `npm run build`: the JavaScript the package ships (package.json "files"), so the installed CLI runs
 * with Node alone, from any folder:
 * - dist/cli/infrahub-backup.mjs: the operator CLI (its entry cli/main.ts, the program in
 *   cli/infrahub-backup.ts and what it imports: the local mode's synthesis, state machine interpreter
 *   and Lambda steps), one ESM bundle whose npm dependencies stay imports (package.json "dependencies"; aws-cdk-lib reads its own files);
 * - dist/runner/runner.mjs: the runner entrypoint that --local starts as a child process, bundled
 *   whole exactly as the runner image builds it (containers/runner/build.ts).
 * Usage: tsx scripts/build.ts [outdir] (default dist).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { buildRunner } from '../containers/runner/build.js';

/** The CLI's entry point and its bundle's path under the output folder. */
export const CLI_ENTRY = 'cli/main.ts';
export const CLI_BUNDLE = join('cli', 'infrahub-backup.mjs');
/** Beside the CLI's bundle: the chunks it imports when needed (the local mode, with the CDK app). */
const CLI_CHUNKS = 'chunk-[hash]';
export const RUNNER_BUNDLE = join('runner', 'runner.mjs');

/**
 * Builds the CLI and runner bundles into `outdir` (emptied first).
 * @throws esbuild's BuildFailure when a file does not compile
 */
export async function buildPackage(outdir = 'dist'): Promise<void> {
  rmSync(outdir, { recursive: true, force: true });
  await build({
    entryPoints: { [CLI_BUNDLE.replace(/\.mjs$/, '')]: CLI_ENTRY },
    outdir,
    outExtension: { '.js': '.mjs' },
    // The local mode is a dynamic import, a chunk of its own: the other commands start without
    // loading aws-cdk-lib.
    splitting: true,
    chunkNames: join('cli', CLI_CHUNKS),
    bundle: true,
    // npm dependencies are imported from node_modules at run time (installed with the package).
    packages: 'external',
    platform: 'node',
    target: 'node20',
    format: 'esm',
    sourcemap: 'linked',
    logLevel: 'warning',
  });
  await buildRunner(join(outdir, RUNNER_BUNDLE));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const outdir = process.argv[2] ?? 'dist';
  await buildPackage(outdir);
  console.log(`built ${join(outdir, CLI_BUNDLE)} and ${join(outdir, RUNNER_BUNDLE)}`);
}
