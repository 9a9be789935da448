/**
 * Where this package's own files are, whether it runs from the repository's TypeScript (tsx, vitest)
 * or from the built JavaScript of an installed package (dist/*): the nearest folder above this
 * module's file whose package.json is named infrahub-backup-aws. Never the working directory, so the
 * installed CLI works from any folder.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's name in package.json. */
export const PACKAGE_NAME = 'infrahub-backup-aws';

/**
 * The nearest folder above `from` (a file inside the package) whose package.json is this package's.
 * @throws Error when there is none
 */
export function findPackageRoot(from: string): string {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const { name } = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown };
      if (name === PACKAGE_NAME) return dir;
    }
    if (dirname(dir) === dir) throw new Error(`no package.json of ${PACKAGE_NAME} above ${from}`);
  }
}

let root: string | undefined;

/**
 * The package's root folder (absolute): findPackageRoot of this module's file, or of the bundle it
 * was built into.
 * @throws Error when the package's package.json is not above it
 */
export function packageRoot(): string {
  root ??= findPackageRoot(fileURLToPath(import.meta.url));
  return root;
}

/**
 * A file of the package by its path inside it ("cdk.json", "dist/runner/runner.mjs").
 * @throws Error naming the file when the package does not hold it (a package built or installed
 *   without it)
 */
export function packageFile(...parts: string[]): string {
  const file = join(packageRoot(), ...parts);
  if (!existsSync(file)) throw new Error(`${file} is missing from the ${PACKAGE_NAME} package`);
  return file;
}
