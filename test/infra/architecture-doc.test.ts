import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { scaled } from '../../harness/time-scale.js';
import {
  ARCHITECTURE_DOC,
  BEGIN_MARKER,
  describeChoiceRule,
  END_MARKER,
  extractSection,
  generateStateMachineSection,
  renderStateMachines,
  replaceSection,
} from '../../scripts/state-machine-diagrams.js';

const LAMBDA = 'arn:aws:lambda:eu-west-1:000000000000:function:FunctionsPlan0000';

describe('docs/architecture.md', () => {
  // Synthesis without bundling: about 10 s alone, several times that on a loaded 2-core machine.
  it('draws the state machines exactly as the synthesized ASL has them', { timeout: scaled(240_000) }, () => {
    const drawn = generateStateMachineSection();
    const documented = extractSection(readFileSync(ARCHITECTURE_DOC, 'utf8'));
    // On failure: `npx tsx scripts/state-machine-diagrams.ts --write` redraws the section.
    expect(documented).toBe(drawn);
  });
});

describe('scripts/state-machine-diagrams.ts', () => {
  const definition = {
    StartAt: 'Plan',
    TimeoutSeconds: 3600,
    States: {
      Plan: {
        Type: 'Task',
        Resource: 'arn:aws:states:::lambda:invoke',
        Parameters: { FunctionName: LAMBDA },
        Retry: [{ ErrorEquals: ['StorageError'], MaxAttempts: 2 }],
        Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Failed' }],
        Next: 'Ok?',
      },
      'Ok?': {
        Type: 'Choice',
        Choices: [{ Variable: '$.ok', BooleanEquals: true, Next: 'Done' }],
        Default: 'Failed',
      },
      Done: { Type: 'Succeed' },
      Failed: { Type: 'Fail', Error: 'PlanFailed' },
    },
  };

  it('draws transitions, choices, catches and ends, with Mermaid-safe ids', () => {
    const section = renderStateMachines(
      [{ kind: 'backup', name: 'x-backup', definition }],
      new Map([[LAMBDA, 'Plan']]),
      'config/x.json',
    );
    expect(section.startsWith(BEGIN_MARKER)).toBe(true);
    expect(section.endsWith(END_MARKER)).toBe(true);
    for (const line of [
      '  state "Ok?" as Ok_',
      '  [*] --> Plan',
      '  Plan --> Ok_',
      '  Plan --> Failed: catch States.ALL',
      '  Ok_ --> Done: $.ok == true',
      '  Ok_ --> Failed: otherwise',
      '  Done --> [*]: succeed',
      '  Failed --> [*]: fail PlanFailed',
      '| top | Plan | Task | Lambda `Plan` | `StorageError` ×2 | `States.ALL` → Failed |',
    ])
      expect(section.split('\n')).toContain(line);
    expect(section).toContain('execution timeout 3600 s (1 h)');
  });

  it('refuses a Lambda it cannot name, rather than print a hashed id', () => {
    expect(() =>
      renderStateMachines([{ kind: 'backup', name: 'x', definition }], new Map(), 'config/x.json'),
    ).toThrow(/FunctionsPlan0000 is not one of the app's functions/);
  });

  it('describes nested choice rules', () => {
    expect(
      describeChoiceRule({
        And: [{ Variable: '$.a', StringEquals: 'x' }, { Not: { Variable: '$.b', IsPresent: true } }],
      }),
    ).toBe('$.a == "x" and not ($.b is present)');
  });

  it('replaces only the generated section, and refuses a document without one', () => {
    const text = `intro\n${BEGIN_MARKER}\nold\n${END_MARKER}\noutro\n`;
    expect(replaceSection(text, `${BEGIN_MARKER}\nnew\n${END_MARKER}`)).toBe(
      `intro\n${BEGIN_MARKER}\nnew\n${END_MARKER}\noutro\n`,
    );
    expect(() => extractSection('no markers', 'doc.md')).toThrow(/doc\.md must hold exactly one/);
    expect(() => extractSection(`${BEGIN_MARKER}${END_MARKER}${BEGIN_MARKER}`, 'doc.md')).toThrow(
      /exactly one/,
    );
  });
});
