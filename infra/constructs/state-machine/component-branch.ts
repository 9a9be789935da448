/**
 * A Parallel branch for one component captured or restored by one runner state: run it when its
 * flag is true, else skip; either way the branch ends with the component's result, never failing,
 * so one failing component does not stop the others:
 *
 *   <flag>? ─ true ─► <runner state> ─► {component, ok: true}
 *      │                    └ error ─► {component, ok: false, failure: {step, error, cause}}
 *      └ otherwise ─► {component, ok: true, skipped: true}
 */
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { StateBuilder } from './builder.js';

/** The branch's component label, its flag, its runner state and its states' names. */
export interface ComponentBranchProps<Step extends string> {
  /** The `component` of the branch's result. */
  readonly component: string;
  /** JSONPath of the boolean that says whether to run it. */
  readonly flag: string;
  readonly step: Step;
  readonly names: { readonly choice: string; readonly done: string; readonly skipped: string };
}

/** The branch (see the module's comment); the failure's state is `<step>Failed`. */
export function componentBranch<Step extends string>(
  b: StateBuilder<Step>,
  props: ComponentBranchProps<Step>,
): sfn.IChainable {
  const { component, step, names } = props;
  const run = b
    .run(step)
    .addCatch(
      new sfn.Pass(b.scope, `${step}Failed`, {
        parameters: {
          component,
          ok: false,
          failure: { step, 'error.$': '$.error.Error', 'cause.$': '$.error.Cause' },
        },
      }),
      { errors: [sfn.Errors.ALL], resultPath: '$.error' },
    )
    .next(new sfn.Pass(b.scope, names.done, { parameters: { component, ok: true } }));
  return new sfn.Choice(b.scope, names.choice)
    .when(sfn.Condition.booleanEquals(props.flag, true), run)
    .otherwise(new sfn.Pass(b.scope, names.skipped, { parameters: { component, ok: true, skipped: true } }));
}
