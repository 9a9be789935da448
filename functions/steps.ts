/**
 * Every Lambda's step, by the Lambda's construct name (infra/constructs/backup-functions.ts; the
 * name the state machines' `lambda:invoke` states resolve to and `cli/local/synth.ts` reads back from
 * the template). Each step is a function of the domain core (`core/`) that takes its event and its
 * clients; the deployed handler (`functions/<kebab-case name>/index.ts`) builds the clients once and
 * calls it, and the local mode (`cli/local/backup.ts`) calls it in-process through this one module.
 * A Lambda added without its step here, or a step under another name, fails the build.
 */

import { reportStep } from '../core/backup/fleet-report.js';
import { freshnessStep } from '../core/backup/freshness.js';
import { lockStep } from '../core/backup/lock-step.js';
import { manifestEvent, manifestStep } from '../core/backup/manifest-step.js';
import { planStep } from '../core/backup/plan-step.js';
import type { DeploymentConfig } from '../core/config/schema.js';
import { dbmsStep } from '../core/ecs/dbms.js';
import { servicesStep } from '../core/ecs/services.js';
import { preflight, preflightEvent } from '../core/infrahub/preflight.js';
import { notifyStep } from '../core/notices/notify.js';
import { neo4jReadyEvent, neo4jReadyStep } from '../core/readiness/neo4j-ready.js';
import { restorePlanStep } from '../core/restore/plan-step.js';
import { restoreReportStep } from '../core/restore/report.js';

export { lambdaHandler } from './handler.js';

/** The Lambdas' construct names; each has its folder `functions/<kebab-case name>/`. */
export const LAMBDA_NAMES = [
  'Plan',
  'Lock',
  'Preflight',
  'Dbms',
  'Neo4jReady',
  'Manifest',
  'Notify',
  'Report',
  'RestorePlan',
  'Services',
  'RestoreReport',
  'Freshness',
] as const;
export type LambdaName = (typeof LAMBDA_NAMES)[number];

/** The Lambdas a state machine invokes (Freshness runs on an hourly rule, not in an execution). */
export type StateMachineLambda = Exclude<LambdaName, 'Freshness'>;

/** Each Lambda's step (see the top of this file). */
export const steps = {
  Plan: planStep,
  Lock: lockStep,
  Preflight: preflight,
  Dbms: dbmsStep,
  Neo4jReady: neo4jReadyStep,
  Manifest: manifestStep,
  Notify: notifyStep,
  Report: reportStep,
  RestorePlan: restorePlanStep,
  Services: servicesStep,
  RestoreReport: restoreReportStep,
  Freshness: freshnessStep,
} as const satisfies Record<LambdaName, (...args: never[]) => unknown>;

/**
 * The Lambdas whose state sends run-time values only (the target's name, ids, options, earlier
 * answers) while their step also needs settings: each one's event from the state's input and the
 * deployment configuration (core/config/bundled.ts, "one channel per kind of value"). The deployed
 * handlers (functions/<name>/index.ts) call the same functions with their bundled configuration,
 * the local mode with the one it runs with.
 * @throws InvalidInputError for a malformed input, a setting sent in it, or a target the
 *   configuration does not name.
 */
export const stepEvents = {
  Preflight: preflightEvent,
  Neo4jReady: neo4jReadyEvent,
  Manifest: manifestEvent,
} as const satisfies Partial<Record<LambdaName, (input: unknown, config: DeploymentConfig) => unknown>>;

/** The folder of a Lambda's handler: its construct name in kebab case (`RestorePlan` → `restore-plan`). */
export function lambdaFolder(name: LambdaName): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}
