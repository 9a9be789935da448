#!/usr/bin/env node
/** The runner's executable (the container's ENTRYPOINT): `runner <subcommand>`. */
// First: the SDK's plain-text Node version warning must not reach the JSON log (see sdk-warning.ts).
import './sdk-warning.js';
import { registerSecretsFromEnv } from '../../../core/redact.js';
import { exitHandledElsewhere, installLastResortHandlers, installStopSignalHandlers, main } from './main.js';

// Before anything can fail: the credentials ECS injected are never printed, whatever echoes them.
registerSecretsFromEnv(process.env);
// An error nothing caught still aborts the uploads, is recorded as a named error and sets the exit code.
installLastResortHandlers();
// ECS's SIGTERM (a stopped task) ends the tools, aborts the uploads and records Interrupted (exit 11).
installStopSignalHandlers();

main(process.argv.slice(2)).then((code) => {
  // An error nothing caught or a stop signal is ending the process with its own code (and bound).
  if (exitHandledElsewhere()) return;
  // Exit explicitly: idle keep-alive sockets of the SDK or the Bolt driver must not hold the task open.
  process.stdout.write('', () => process.exit(code));
});
