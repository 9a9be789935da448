/**
 * The operator CLI's entry point (bin/infrahub-backup.mjs imports it, or its bundle
 * dist/cli/infrahub-backup.mjs): runs the program on the process's arguments and exits with its code.
 */
import { run } from './infrahub-backup.js';

process.exit(await run(process.argv.slice(2)));
