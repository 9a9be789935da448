import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, type AppProps } from 'aws-cdk-lib';

/** The feature flags of cdk.json, so tests synthesize exactly what `cdk synth` does. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync('cdk.json', 'utf8')) as { context: Record<string, unknown> };
  return cdkJson.context;
}

/** An App with cdk.json's context (plus `context`) writing to a fresh temporary folder. */
export function testApp(context: Record<string, unknown> = {}, props: AppProps = {}): App {
  return new App({
    outdir: mkdtempSync(join(tmpdir(), 'cdk-test-')),
    ...props,
    context: { ...cdkJsonContext(), ...context },
  });
}
