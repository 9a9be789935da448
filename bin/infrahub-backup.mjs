#!/usr/bin/env node
// The operator CLI's executable (package.json "bin"): runs cli/infrahub-backup.ts through tsx.
import { register } from 'tsx/esm/api';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
const { run } = await import('../cli/infrahub-backup.ts');
process.exit(await run(process.argv.slice(2)));
