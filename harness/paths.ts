import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file lives in harness/). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Git-ignored downloads: the Neo4j classpath from Maven Central. */
export const cacheDir = join(repoRoot, '.cache');

/** The project-local Python virtual environment holding moto. */
export const venvDir = join(repoRoot, '.venv');

const neo4jPom = join(repoRoot, 'harness', 'neo4j', 'pom.xml');

/** The Neo4j version is declared once, in harness/neo4j/pom.xml, which scripts/setup.sh resolves. */
export function neo4jVersion(): string {
  const match = /<neo4j\.version>([^<]+)<\/neo4j\.version>/.exec(readFileSync(neo4jPom, 'utf8'));
  if (!match?.[1]) throw new Error(`no <neo4j.version> property in ${neo4jPom}`);
  return match[1];
}

/** Folder of the Neo4j jars for a version; scripts/setup.sh writes `.complete` when it is whole. */
export function neo4jLibDir(version = neo4jVersion()): string {
  return join(cacheDir, `neo4j-${version}`, 'lib');
}

export function isNeo4jInstalled(version = neo4jVersion()): boolean {
  return existsSync(join(neo4jLibDir(version), '.complete'));
}
