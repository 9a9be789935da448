import { describe, expect, it } from 'vitest';
import { parseInspection, restorableChain } from '../../containers/runner/src/components/neo4j.js';

// The example output of `neo4j-admin database backup --inspect-path` in the Operations Manual,
// "Restore a database backup" (a full backup and two differentials).
const DOCUMENTED = `
|                                                       FILE | DATABASE |                          DATABASE ID |                TIME |  FULL | COMPRESSED | LOWEST TX | HIGHEST TX |
| file:///path/to/mybackups/neo4j-2023-06-29T14-46-27.backup |    neo4j | c8368b24-55e2-474d-bb41-75657f5bfcde | 2023-06-29T13:46:27 |  true |       true |         1 |         11 |
| file:///path/to/mybackups/neo4j-2023-06-29T14-50-45.backup |    neo4j | c8368b24-55e2-474d-bb41-75657f5bfcde | 2023-06-29T13:50:45 | false |       true |        12 |         14 |
| file:///path/to/mybackups/neo4j-2023-06-29T14-51-33.backup |    neo4j | c8368b24-55e2-474d-bb41-75657f5bfcde | 2023-06-29T13:51:33 | false |       true |        15 |         18 |
`;
const names = [
  'neo4j-2023-06-29T14-46-27.backup',
  'neo4j-2023-06-29T14-50-45.backup',
  'neo4j-2023-06-29T14-51-33.backup',
];

describe('Enterprise backup chains as neo4j-admin --inspect-path describes them (issue 15)', () => {
  const inspected = new Map(parseInspection(DOCUMENTED).map((a) => [a.file, a]));

  it("reads the documented table: each artifact's file name, fullness and transaction range", () => {
    expect([...inspected.values()]).toEqual([
      { file: names[0], database: 'neo4j', full: true, lowestTx: 1, highestTx: 11 },
      { file: names[1], database: 'neo4j', full: false, lowestTx: 12, highestTx: 14 },
      { file: names[2], database: 'neo4j', full: false, lowestTx: 15, highestTx: 18 },
    ]);
  });

  it('restores to the newest artifact: the whole chain, ending at its highest transaction', () => {
    expect(restorableChain(names, inspected, 'neo4j')).toEqual({ files: names, highestTx: 18 });
  });

  it('starts the chain at the newest full artifact (a fallback full backup leaves the base out)', () => {
    const fallback = new Map(inspected);
    fallback.set(names[2] as string, {
      file: names[2] as string,
      database: 'neo4j',
      full: true,
      lowestTx: 1,
      highestTx: 18,
    });
    expect(restorableChain(names, fallback, 'neo4j')).toEqual({ files: [names[2]], highestTx: 18 });
  });

  it('refuses a gap, a chain without a full backup, an artifact it does not list, and a missing column', () => {
    const gap = new Map(inspected);
    gap.set(names[2] as string, {
      file: names[2] as string,
      database: 'neo4j',
      full: false,
      lowestTx: 16,
      highestTx: 18,
    });
    expect(() => restorableChain(names, gap, 'neo4j')).toThrow(
      /has a gap: .* ends at transaction 14, .* starts at 16/,
    );
    expect(() => restorableChain(names.slice(1), inspected, 'neo4j')).toThrow(/has no full backup/);
    expect(() => restorableChain([...names, 'neo4j-2023-06-30T00-00-00.backup'], inspected, 'neo4j')).toThrow(
      /lists no neo4j-2023-06-30T00-00-00\.backup/,
    );
    expect(() => restorableChain(names, inspected, 'other')).toThrow(/lists no/);
    expect(() => parseInspection('| FILE | DATABASE |\n| a.backup | neo4j |')).toThrow(/no FULL column/);
  });
});
