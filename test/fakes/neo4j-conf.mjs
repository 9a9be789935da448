/**
 * Shared by the FAKE Enterprise tools (fake-neo4j-admin-enterprise.mjs, fake-neo4j-enterprise-server.mjs):
 * a directory setting of the server's configuration, as neo4j-admin reads it:
 * `$NEO4J_CONF/neo4j.conf` (default `$NEO4J_HOME/conf`); a relative path resolves against NEO4J_HOME
 * (Operations Manual, "Configuration settings": server.directories.*). `fallback` when the file or
 * setting is absent.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

export function configuredDirectory(setting, fallback) {
  const home = process.env.NEO4J_HOME ?? process.cwd();
  const file = join(process.env.NEO4J_CONF ?? join(home, 'conf'), 'neo4j.conf');
  const line = existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .find((l) => l.split('=')[0]?.trim() === setting)
    : undefined;
  const value = line ? line.slice(line.indexOf('=') + 1).trim() : fallback;
  return isAbsolute(value) ? value : join(home, value);
}
