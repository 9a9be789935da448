/**
 * What a restore is validated with: the counts recorded at backup time against those read from the
 * restored target, one line per difference (empty when they agree).
 */
import type { GraphCounts } from '../backup/results.js';

/** Exact row counts per table ("public.log: 40 at backup, 38 after restore"). */
export function tableCountDifferences(
  expected: Record<string, number>,
  actual: Record<string, number>,
): string[] {
  const tables = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort();
  return tables.flatMap((t) =>
    expected[t] === actual[t]
      ? []
      : [`${t}: ${expected[t] ?? 'absent'} at backup, ${actual[t] ?? 'absent'} after restore`],
  );
}

/** Tables a dump defines (`schema.name`) that the restored database lacks, sorted. */
export function tablesMissing(defined: readonly string[], actual: Record<string, number>): string[] {
  return defined.filter((t) => !(t in actual)).sort();
}

/**
 * The sentence a restore report carries for a PostgreSQL validation, saying exactly what was
 * compared: "counts equal those at backup time" only when row counts recorded at backup time were
 * compared; otherwise (an imported infrahub-backup archive records none) what was checked instead.
 */
export function describeTableCheck(check: {
  compared: boolean;
  tables: number;
  rows: number;
  /** Tables the dump defines (all present after the restore). */
  dumpTables: number;
}): string {
  return check.compared
    ? `counts equal those at backup time (${check.tables} tables, ${check.rows} rows)`
    : `no counts recorded at backup time; restored database has ${check.tables} tables, ${check.rows} rows (all ${check.dumpTables} tables the dump defines present)`;
}

/** Node and relationship counts per database recorded at backup time. */
export function graphCountDifferences(
  expected: Record<string, GraphCounts>,
  actual: Record<string, GraphCounts>,
): string[] {
  return Object.entries(expected).flatMap(([db, want]) => {
    const got = actual[db];
    return got && got.nodes === want.nodes && got.relationships === want.relationships
      ? []
      : [
          `${db}: ${want.nodes} nodes and ${want.relationships} relationships at backup, ${got ? `${got.nodes} and ${got.relationships}` : 'no database'} after restore`,
        ];
  });
}
