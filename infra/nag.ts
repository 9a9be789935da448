import { type App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';

/**
 * Runs cdk-nag's AwsSolutions pack on every synth: an unacknowledged finding fails `cdk synth`,
 * so a non-compliant change cannot slip into a deployment. Acknowledgements live beside the
 * construct they concern, each with its reason.
 */
export function addNagChecks(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
}
