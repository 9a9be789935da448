import { beforeAll, describe, expect, it } from 'vitest';
import { allStates } from '../../cli/local/state-machine.js';
import { type SynthesizedBackup, synthesizeBackup } from '../../cli/local/synth.js';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { scaled } from '../../harness/time-scale.js';

type State = Record<string, unknown> & {
  Type: string;
  Next?: string;
  Parameters?: Record<string, unknown>;
  Catch?: Array<{ ErrorEquals: string[]; Next: string; ResultPath?: string }>;
};

/** Every JsonPath a Parameters object reads ("x.$": "<path>"), nested included. */
function pathsRead(value: unknown): string[] {
  if (!value || typeof value !== 'object') return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) =>
    k.endsWith('.$') && typeof v === 'string' ? [v] : pathsRead(v),
  );
}

// Issue 12, item 20: Step Functions takes any JSON as execution input. The first state of each
// machine must accept null, an array or a string (no InputPath, no ResultPath into the input, no
// "$" path that needs an object), so the plan Lambda always runs and refuses it with a notice.
describe('first state of every state machine (template)', () => {
  const config = loadDeploymentConfigFile('config/example.json');
  let synthesized: SynthesizedBackup;
  beforeAll(() => {
    synthesized = synthesizeBackup(config);
  }, scaled(120_000));

  it.each([
    ['backup', 'Plan', 'NotifyInputRejected'],
    ['restore', 'PlanRestore', 'RestoreRefused'],
    ['drill', 'PlanDrill', 'DrillRefused'],
  ] as const)(
    '%s: a Pass that reads nothing of the input object, then %s, whose refusal is notified',
    (kind, plan, refused) => {
      const definition = synthesized.machines[kind].definition;
      const states = new Map(allStates(definition) as Array<[string, State]>);
      const first = states.get(definition.StartAt);
      expect(first?.Type).toBe('Pass');
      expect(first).not.toHaveProperty('InputPath');
      expect(first).not.toHaveProperty('ResultPath');
      expect(first?.Parameters).toBeDefined();
      for (const path of pathsRead(first?.Parameters)) expect(path).toMatch(/^\$\$\./);
      expect(first?.Next).toBe(plan);
      const planState = states.get(plan);
      expect(planState?.Parameters).toMatchObject({ Payload: { 'input.$': '$$.Execution.Input' } });
      expect(planState?.Catch?.[0]).toMatchObject({ ErrorEquals: ['States.ALL'], Next: refused });
    },
  );
});
