import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { ConfigError, InvalidInputError } from '../errors.js';
import { type DeploymentConfig, DeploymentConfigSchema } from './schema.js';

/** `targets[0].neo4j.boltPort` from `['targets', 0, 'neo4j', 'boltPort']`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(root)' : out;
}

/** "null", "an array", "a string"...: what a value is, for messages. */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** One line per problem: the field, then the reason. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const field = formatPath(issue.path);
    if (issue.code === 'invalid_type' && issue.path.length === 0 && issue.expected === 'object') {
      return `${field}: must be a JSON object such as {}, got ${kindOf(issue.input)}`;
    }
    if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) {
      return `${field}: is required (expected ${issue.expected})`;
    }
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map((k) => `"${k}"`).join(', ');
      return `${field}: has unknown key${issue.keys.length > 1 ? 's' : ''} ${keys}`;
    }
    return `${field}: ${issue.message}`;
  });
}

/** Validates a configuration object; `source` says where it came from, for the error message. */
export function parseDeploymentConfig(raw: unknown, source: string): DeploymentConfig {
  const result = DeploymentConfigSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(source, describeIssues(result.error));
  return result.data;
}

/** Reads and validates a JSON configuration file. */
export function loadDeploymentConfigFile(path: string): DeploymentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [`cannot read the file: ${(err as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(path, [`is not valid JSON: ${(err as Error).message}`]);
  }
  return parseDeploymentConfig(raw, path);
}

/** Validates an execution input or event; a mismatch names every field and reason (InvalidInput). */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, what: string): z.output<T> {
  // reportInput: the root issue of a non-object says what it got (null, an array, a string).
  const result = schema.safeParse(input, { reportInput: true });
  if (!result.success) throw new InvalidInputError(what, describeIssues(result.error));
  return result.data;
}
