import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { repoRoot } from '../../harness/paths.js';

describe('the configuration files the project ships (config/*.json)', () => {
  const files = readdirSync(join(repoRoot, 'config')).filter((f) => f.endsWith('.json'));

  it('are there: the example, every option, and the local-mode recipe of the README', () => {
    expect(files).toEqual(expect.arrayContaining(['example.json', 'full.json', 'local.example.json']));
  });

  it.each(files)('%s is a valid deployment configuration', (file) => {
    expect(loadDeploymentConfigFile(join(repoRoot, 'config', file)).targets.length).toBeGreaterThan(0);
  });
});
