import { Arn, ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { FLEET_RESULTS_ROOT } from '../../core/backup/layout.js';
import { acknowledgeWildcards } from '../nag.js';

/**
 * A Distributed Map whose ResultWriter (S3 PutObject to `bucket`, under `prefix`) is written into
 * the state as ASL has it, without CDK's ResultWriter grants (PutObject on the whole bucket): the
 * state machine grants the prefix alone (grantFleetResults).
 */
export class ScopedResultWriterMap extends sfn.DistributedMap {
  private writer?: { Resource: string; Parameters: { Bucket: string; Prefix: string } };

  /** Writes the child executions' results to `bucket` under `prefix` (ResultWriter). */
  resultWriterTo(bucket: string, prefix: string): void {
    this.writer = {
      Resource: 'arn:aws:states:::s3:putObject',
      Parameters: { Bucket: bucket, Prefix: prefix },
    };
  }

  override toStateJson(queryLanguage?: sfn.QueryLanguage): object {
    const json = super.toStateJson(queryLanguage) as Record<string, unknown>;
    return this.writer ? { ...json, ResultWriter: this.writer } : json;
  }
}

/** Where a fleet's Distributed Map writes its children's results: `.fleet-results/<kind>` (the ResultWriter's Prefix). */
export function fleetResultsPrefix(kind: 'backup' | 'drill'): string {
  return `${FLEET_RESULTS_ROOT}${kind}`;
}

/**
 * What a state machine with a Distributed Map labelled `label` needs beyond CDK's own
 * DistributedMapPolicy (StartExecution on the state machine, Describe/StopExecution on its
 * executions, RedriveExecution on the Map's children: AWS Step Functions Developer Guide, "IAM
 * policies for using Distributed Map states"): the ResultWriter's writes under
 * `.fleet-results/<kind>/` only (AWS Step Functions Developer Guide, "ResultWriter (Map)", "IAM
 * policies for ResultWriter"; CDK's ResultWriter would grant the whole bucket, manifests included),
 * encrypted with the bucket's key (a data key per object), and cdk-nag's acknowledgements of the
 * wildcards these need, each with its reason.
 */
export function grantFleetResults(
  stateMachine: sfn.StateMachine,
  props: { bucket: s3.IBucket; key: kms.IKey; kind: 'backup' | 'drill'; label: string },
): void {
  const fleetResults = props.bucket.arnForObjects(`${fleetResultsPrefix(props.kind)}/*`);
  stateMachine.addToRolePolicy(
    new iam.PolicyStatement({
      actions: ['s3:PutObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
      resources: [fleetResults],
    }),
  );
  // The Distributed Map's own policy (CDK's StateGraph.bind: DistributedMapPolicy): StartExecution
  // on this state machine, Describe/StopExecution and RedriveExecution on its child executions,
  // whose names Step Functions chooses at run time (AWS Step Functions Developer Guide, "IAM
  // policies for using Distributed Map states").
  const executions = (suffix: string) =>
    Stack.of(stateMachine).formatArn({
      service: 'states',
      resource: 'execution',
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      resourceName: `${Arn.split(stateMachine.stateMachineArn, ArnFormat.COLON_RESOURCE_NAME).resourceName}${suffix}`,
    });
  acknowledgeWildcards(
    stateMachine,
    [executions(':*'), executions(`/${props.label}:*`)],
    "The Distributed Map's child executions (and their redrive) of this state machine only: their names are chosen by Step Functions at run time.",
  );
  acknowledgeWildcards(
    stateMachine.role,
    [fleetResults],
    `The Distributed Map writes its results under ${fleetResultsPrefix(props.kind)}/<map run id>/, a name Step Functions chooses at run time; nothing else in the bucket.`,
  );
  stateMachine.addToRolePolicy(
    new iam.PolicyStatement({
      actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
      resources: [props.key.keyArn],
    }),
  );
}
