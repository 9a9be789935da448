/**
 * The runner's own work on a dump's bytes, without neo4j-admin or S3 (bench/neo4j-backup.ts): the
 * file read through the dump's format check (the zstd body decompressed: native node:zlib from
 * Node.js 22.15, as in the runner's image, else fzstd in JavaScript) and SHA-256, as
 * backupNeo4jCommunity streams it. inStreamChecksOn runs it in another Node.js (the runner's): this
 * module bundled with esbuild, as the runner is, and started there.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkedStream, neo4jDumpCheck } from '../core/backup/formats.js';

/**
 * @returns wall-clock ms in this process
 * @throws Error when the file fails the dump check
 */
export async function inStreamChecks(file: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const hash = createHash('sha256');
  const checked = checkedStream(createReadStream(file), neo4jDumpCheck());
  for await (const chunk of checked.stream) hash.update(chunk);
  hash.digest();
  const verdict = checked.verdict();
  if (verdict?.status !== 'ok') throw new Error(`${file} failed the dump check: ${JSON.stringify(verdict)}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/**
 * inStreamChecks(file) in the Node.js at `node`.
 * @returns wall-clock ms measured there
 * @throws Error when the bundle cannot be built or the run fails (its stderr)
 */
export async function inStreamChecksOn(node: string, file: string): Promise<number> {
  const { build } = await import('esbuild');
  const dir = mkdtempSync(join(tmpdir(), 'bench-in-stream-'));
  try {
    const outfile = join(dir, 'in-stream.mjs');
    await build({
      stdin: {
        contents: `import { inStreamChecks } from './in-stream.ts'; console.log(await inStreamChecks(process.argv[2]));`,
        resolveDir: import.meta.dirname,
        loader: 'ts',
      },
      outfile,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      banner: {
        js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      },
      logLevel: 'warning',
    });
    const run = spawnSync(node, [outfile, file], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`${node} ${outfile} failed: ${run.stderr}`);
    return Number(run.stdout.trim());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
