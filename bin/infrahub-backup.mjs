#!/usr/bin/env node
// The operator CLI's executable (package.json "bin"). In a repository checkout (cli/main.ts is there)
// it runs the TypeScript through tsx, a development dependency; an installed package ships only the
// JavaScript that `npm run build` writes (dist/cli/infrahub-backup.mjs), which runs with Node alone.
import { existsSync } from 'node:fs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const source = new URL('../cli/main.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import('../dist/cli/infrahub-backup.mjs');
}
