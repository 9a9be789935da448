#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { ConfigError } from '../../core/errors.js';
import { buildApp, resolveConfig } from '../app.js';
import { addNagChecks } from '../nag.js';

const app = new App();
try {
  buildApp(app, resolveConfig(app));
} catch (err) {
  if (err instanceof ConfigError) {
    // A clean message naming each bad field, not a stack trace; cdk synth exits non-zero.
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}
addNagChecks(app);
app.synth();
