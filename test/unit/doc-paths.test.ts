/**
 * The documents that map the code (docs/architecture.md, functions/README.md) name only files that
 * exist (issue 17: the map went stale when the Lambdas' steps moved to core/). The rule is
 * exact, with no guessing among folders:
 *
 * - Outside fenced code blocks, a code span is a path when it is one word of path characters
 *   (letters, digits, `_ . - / * <>`); `*` and `<name>` stand for any name within one folder.
 * - A path whose first segment is a top-level entry of the repository (`core/...`, `infra/...`,
 *   `README.md`; not dot-folders) is a repository path and must exist from the repository's root.
 *   Paths into node_modules, dist, cdk.out or coverage (installed or built, not the repository's)
 *   are not checked.
 * - In a table, a relative path (with a `/`, or a file name ending .ts, .mjs, .js, .json, .md, .sh)
 *   resolves against exactly one folder: that of the last repository path before it in the same cell
 *   ("`test/integration/a.test.ts`, `b.test.ts`"); else the base its column declares in an HTML
 *   comment directly above the table, `<!-- paths: column=folder/ other=row -->` (`row`: the folder of
 *   the last repository path in the row's earlier cells). Without either, a relative .ts/.mjs/.js
 *   file name is an error (name it from the root); other relative names (S3 keys such as
 *   `locks/<target>.json`) are not repository paths and are left alone.
 * - Outside tables, a relative .ts/.mjs/.js file name is an error too.
 * - A Markdown link to a relative target (`[x](../functions/README.md#y)`) must exist from the
 *   document's folder.
 *
 * And docs/architecture.md names every source file of `core/` and `cli/` (a glob such as
 * `cli/commands/*` names what it matches; a folder alone names nothing), so a module added there
 * without its line in the map fails too.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DOCUMENTS = ['docs/architecture.md', 'functions/README.md'];
const NOT_SOURCE = new Set(['node_modules', 'dist', 'cdk.out', 'coverage']);

const PATH_SHAPE = /^[\w.*<>-]+(\/[\w.*<>-]+)*\/?$/;
const FILE_NAME = /\.(ts|mjs|js|json|md|sh)$/;
const SOURCE_NAME = /\.(ts|mjs|js)$/;

/** Whether `path` (relative to `root`; `*` and `<name>` match any one name) names something there. */
function pathExists(root: string, path: string): boolean {
  const segments = path.replace(/\/$/, '').split('/');
  const walk = (dir: string, i: number): boolean => {
    if (i === segments.length) return true;
    const segment = segments[i] as string;
    if (segment === '..' || segment === '.') return walk(join(dir, segment), i + 1);
    if (!/[*<]/.test(segment)) {
      const next = join(dir, segment);
      return existsSync(next) && (i === segments.length - 1 || statSync(next).isDirectory())
        ? walk(next, i + 1)
        : false;
    }
    const pattern = patternOf(segment);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) return false;
    return readdirSync(dir).some((name) => pattern.test(name) && walk(join(dir, name), i + 1));
  };
  return walk(root, 0);
}

/** `pattern` (`*` and `<name>` within one folder) as a regular expression over whole paths. */
function patternOf(pattern: string): RegExp {
  const segment = (part: string) =>
    part === '*' ? '[^/]*' : part.startsWith('<') ? '[^/]+' : part.replace(/[.+?^${}()|[\]\\-]/g, '\\$&');
  return new RegExp(
    `^${pattern
      .split(/(<[^>]*>|\*)/)
      .map(segment)
      .join('')}$`,
  );
}

/** Every file under `dir` (relative to `root`), recursively, as repository paths. */
function filesUnder(root: string, dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    return entry.isDirectory() ? filesUnder(root, path) : [path];
  });
}

/** The folder a repository path names or lies in, with a trailing slash. */
function folderOf(path: string): string {
  return path.endsWith('/') ? path : `${posix.dirname(path)}/`;
}

/**
 * Every problem with the paths `text` (the document at `docPath`, relative to `root`) names, one line
 * each: `line N: \`path\` ...`. Empty when all exist. Each path that exists, resolved from the root
 * (a pattern when it holds `*` or `<name>`), is added to `named` when given.
 */
function pathProblems(root: string, docPath: string, text: string, named?: Set<string>): string[] {
  const topLevel = new Set(readdirSync(root).filter((n) => !n.startsWith('.') && !NOT_SOURCE.has(n)));
  const problems: string[] = [];
  const isRepoPath = (span: string) => topLevel.has(span.split('/')[0] as string);
  const check = (line: number, span: string, resolved: string) => {
    if (pathExists(root, resolved)) named?.add(posix.normalize(resolved));
    else
      problems.push(`line ${line}: \`${span}\`${resolved === span ? '' : ` (${resolved})`} does not exist`);
  };
  let fenced = false;
  let declared: Map<string, string> | undefined; // the next table's column bases
  let table: { columns: string[]; bases: Map<string, string> } | undefined;

  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    if (/^\s*```/.test(raw)) {
      fenced = !fenced;
      return;
    }
    if (fenced) return;
    for (const link of raw.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = (link[1] as string).replace(/#.*$/, '');
      if (target === '' || /^[a-z]+:/i.test(target)) continue;
      check(line, target, posix.join(posix.dirname(docPath), target));
    }
    const comment = /^<!--\s*paths:(.*)-->\s*$/.exec(raw);
    if (comment) {
      declared = new Map(
        (comment[1] as string)
          .trim()
          .split(/\s+/)
          .map((pair) => {
            const [column, base] = pair.split('=');
            if (!column || !base) throw new Error(`${docPath} line ${line}: "${pair}" is not column=base`);
            return [column, base];
          }),
      );
      for (const [column, base] of declared) if (base !== 'row') check(line, `${column}=${base}`, base);
      return;
    }
    if (!raw.startsWith('|')) {
      table = undefined;
      declared = undefined;
    } else if (!table) {
      const columns = raw
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim());
      const bases = declared ?? new Map<string, string>();
      for (const column of bases.keys())
        if (!columns.includes(column)) problems.push(`line ${line}: the table has no column "${column}"`);
      table = { columns, bases };
      declared = undefined;
      return;
    } else if (/^\|[\s|:-]+\|$/.test(raw)) return;

    const cells = table ? raw.split('|').slice(1, -1) : [raw];
    let rowBase: string | undefined;
    cells.forEach((cell, column) => {
      let cellBase: string | undefined;
      for (const match of cell.matchAll(/`([^`]+)`/g)) {
        const span = match[1] as string;
        if (!PATH_SHAPE.test(span) || NOT_SOURCE.has(span.split('/')[0] as string)) continue;
        if (isRepoPath(span)) {
          check(line, span, span);
          if (table) cellBase = folderOf(span);
          continue;
        }
        if (!span.includes('/') && !FILE_NAME.test(span)) continue;
        const declaredBase = table?.bases.get(table.columns[column] ?? '');
        const base = cellBase ?? (declaredBase === 'row' ? rowBase : declaredBase);
        if (base) check(line, span, posix.join(base, span));
        else if (SOURCE_NAME.test(span))
          problems.push(
            `line ${line}: \`${span}\` is relative to nothing: name it from the repository's root`,
          );
      }
      if (cellBase) rowBase = cellBase;
    });
  });
  return problems;
}

/** The files under `folders` that no entry of `named` names (a folder names none of its files). */
function unnamedFiles(root: string, folders: string[], named: Set<string>): string[] {
  const patterns = [...named].filter((p) => !p.endsWith('/')).map(patternOf);
  return folders
    .flatMap((folder) => filesUnder(root, folder))
    .filter((file) => !patterns.some((pattern) => pattern.test(file)));
}

describe('paths named by the documents that map the code', () => {
  for (const doc of DOCUMENTS)
    it(`${doc} names only files that exist`, () => {
      expect(pathProblems(ROOT, doc, readFileSync(join(ROOT, doc), 'utf8'))).toEqual([]);
    });

  it('docs/architecture.md names every file of core/ and cli/', () => {
    const named = new Set<string>();
    pathProblems(
      ROOT,
      'docs/architecture.md',
      readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8'),
      named,
    );
    expect(unnamedFiles(ROOT, ['core', 'cli'], named)).toEqual([]);
  });
});

describe('pathProblems', () => {
  const doc = 'docs/x.md';
  const problems = (text: string) => pathProblems(ROOT, doc, text);

  it('checks repository paths from the root, with * and <name> within one folder', () => {
    expect(problems('`core/errors.ts`, `functions/<name>/index.ts`, `cli/commands/*`, `core/`')).toEqual([]);
    expect(problems('see `core/gone.ts`')).toEqual(['line 1: `core/gone.ts` does not exist']);
    expect(problems('`functions/<name>/gone.ts`')).toEqual([
      'line 1: `functions/<name>/gone.ts` does not exist',
    ]);
  });

  it('resolves a relative name in a table against its cell, then its column, and nothing else', () => {
    const table = [
      '<!-- paths: file=core/backup/ holds=row -->',
      '| module | file | holds | tests |',
      '|---|---|---|---|',
      '| `core/config/` | `plan.ts` | `schema.ts` | `test/unit/plan.test.ts`, `retention.test.ts` |',
    ];
    expect(problems(table.join('\n'))).toEqual([]);
    // plan.ts is in core/backup/, not in the row's core/config/; retention.test.ts not in test/infra/.
    table[3] =
      '| `core/config/` | `schema.ts` | `plan.ts` | `test/infra/storage.test.ts`, `retention.test.ts` |';
    expect(problems(table.join('\n'))).toEqual([
      'line 4: `schema.ts` (core/backup/schema.ts) does not exist',
      'line 4: `plan.ts` (core/config/plan.ts) does not exist',
      'line 4: `retention.test.ts` (test/infra/retention.test.ts) does not exist',
    ]);
  });

  it('finds the files a document leaves out; a folder names none, a glob what it matches', () => {
    const named = new Set<string>();
    expect(pathProblems(ROOT, doc, '`cli/commands/*`, `cli/ops/`, `cli/ops/catalog.ts`', named)).toEqual([]);
    const left = unnamedFiles(ROOT, ['cli/commands', 'cli/ops'], named);
    expect(left).toContain('cli/ops/tarball.ts');
    expect(left).not.toContain('cli/ops/catalog.ts');
    expect(left.filter((f) => f.startsWith('cli/commands/'))).toEqual([]);
  });

  it('refuses a source file name with no folder, leaves S3 keys alone, checks relative links', () => {
    expect(problems('| a |\n|---|\n| `plan.ts`, `locks/<target>.json`, `report.json` |')).toEqual([
      "line 3: `plan.ts` is relative to nothing: name it from the repository's root",
    ]);
    expect(problems('[runbook](runbook.md#x), [web](https://example.com/a.md)')).toEqual([]);
    // Outside a table a repository path lends its folder to nothing.
    expect(problems('`core/backup/layout.ts` (and `cli/ops/catalog.ts` for `.verified/`)')).toEqual([]);
    expect(problems('[gone](gone.md)')).toEqual(['line 1: `gone.md` (docs/gone.md) does not exist']);
    expect(problems('<!-- paths: nope=core/ -->\n| a |\n|---|')).toEqual([
      'line 2: the table has no column "nope"',
    ]);
  });
});
