/**
 * `npm run audit:templates [-- --print | --write]`: runs the template audit (test/helpers/template-audit.ts)
 * outside the test runner.
 *   (no flag)  compares with test/infra/accepted-findings.json; exit 1 on new findings or stale entries.
 *   --print    also prints every current finding (accepted or new) and the entries the new ones need.
 *   --write    rewrites the accepted list: entries that still match keep their reasons, stale ones go,
 *              new findings are added with an unwritten reason (UNWRITTEN_REASON), which the list refuses until it is written.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import {
  ACCEPTED_FINDINGS_FILE,
  auditTemplates,
  compareFindings,
  describeDifferences,
  type Finding,
  loadAcceptedFindings,
  proposeEntries,
  shown,
  UNWRITTEN_REASON,
} from './template-audit.js';

const args = new Set(process.argv.slice(2));
const result = await auditTemplates();
let accepted: ReturnType<typeof loadAcceptedFindings> = [];
try {
  accepted = loadAcceptedFindings();
} catch (err) {
  if (!args.has('--write')) throw err;
  console.error(`ignoring the current list: ${(err as Error).message}`);
}
const { unaccepted, stale } = compareFindings(result.findings, accepted);
const fresh = new Set(unaccepted);
const line = (f: Finding) =>
  `${fresh.has(f) ? 'NEW     ' : 'accepted'} ${f.tool} ${f.rule} ${f.template} ${f.resource}: ${f.message}`;

console.log(
  `templates in ${shown(result.dir)}: ${result.templates.map((t) => t.id).join(', ')}; synth ${result.timings.synth} ms, tools ${result.timings.tools} ms (cfn-lint ${result.timings['cfn-lint']}, checkov ${result.timings.checkov}, cfn-guard ${result.timings['cfn-guard']})`,
);
if (args.has('--print')) {
  for (const f of result.findings) console.log(line(f));
  if (unaccepted.length > 0)
    console.log(`entries for the new findings:\n${JSON.stringify(proposeEntries(unaccepted), null, 2)}`);
}
if (args.has('--write')) {
  // Keep every entry's patterns that still match in the templates where they do; add the new findings.
  const staleKeys = new Set(stale.map((s) => `${s.index}\u0000${s.template}\u0000${s.resource}`));
  const kept = accepted
    .map((entry, index) => {
      const templates = entry.templates.filter((t) =>
        entry.resources.some((r) => !staleKeys.has(`${index}\u0000${t}\u0000${r}`)),
      );
      const resources = entry.resources.filter((r) =>
        templates.some((t) => !staleKeys.has(`${index}\u0000${t}\u0000${r}`)),
      );
      return { ...entry, templates, resources };
    })
    .filter((e) => e.templates.length > 0 && e.resources.length > 0);
  const next = [...kept, ...proposeEntries(unaccepted)];
  writeFileSync(ACCEPTED_FINDINGS_FILE, `${JSON.stringify({ accepted: next }, null, 2)}\n`);
  // In the repository's JSON style (short arrays on one line), so a rewrite shows only real changes.
  spawnSync('node_modules/.bin/biome', ['format', '--write', ACCEPTED_FINDINGS_FILE], { stdio: 'ignore' });
  console.log(
    `wrote ${next.length} entries to ${ACCEPTED_FINDINGS_FILE}; replace each "${UNWRITTEN_REASON}" with the reason`,
  );
} else if (unaccepted.length > 0 || stale.length > 0) {
  console.error(describeDifferences(unaccepted, stale));
  process.exitCode = 1;
} else {
  console.log(`${result.findings.length} findings, all accepted (${ACCEPTED_FINDINGS_FILE})`);
}
