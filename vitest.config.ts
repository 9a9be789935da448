import { defineConfig } from 'vitest/config';
import { scaled, timeScale } from './harness/time-scale.js';

// A bad TEST_TIME_SCALE is refused here, once, with its message alone: thrown from the config, it would
// reach the terminal as a stack trace through vite's bundled copy of this file (node_modules/.vite-temp).
try {
  timeScale();
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
}

// Every time-out stretches with the machine's load when the run starts, or TEST_TIME_SCALE
// (harness/time-scale.ts); per-test time-outs in the files do the same when each file is collected.
export default defineConfig({
  test: {
    reporters: ['default', './test/reporters/summary.ts'],
    env: {
      // The SDK warns on Node 20 that 2027 releases need Node 22 (Lambda's runtime); not news in tests.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    // Removes the folders each test file made with testApp or testTempDir (test/helpers/temp.ts).
    setupFiles: ['./test/helpers/temp-cleanup.ts'],
    // Test files run in child processes, so the harness's exit handler can reap what a crashed file started.
    pool: 'forks',
    // Two test files at a time on this 2-core machine: the integration tests spend much of their time
    // waiting on servers they start (JVMs, PostgreSQL, moto), each on its own free ports and folders.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          // Pure code: no synthesis, no servers (a few use an in-process fake), no program spawned or
          // bundled, no test waiting seconds on real timers: those belong in integration
          // (runner-bundle.test.ts, task-token.test.ts). The tier runs in well under 30 s on an idle machine.
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: scaled(120_000),
          hookTimeout: scaled(120_000),
        },
      },
      {
        extends: true,
        test: {
          // The CDK app synthesized without bundling the Lambdas (testApp): templates, cdk-nag, the
          // template audit. A synthesis takes 5-10 s alone, up to three-fold under load; the
          // 1,000-target fleets take about 40 s.
          name: 'infra',
          include: ['test/infra/**/*.test.ts'],
          testTimeout: scaled(180_000),
          hookTimeout: scaled(240_000),
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // Real servers start in beforeAll hooks: a JVM, a PostgreSQL cluster, a Python server.
          testTimeout: scaled(180_000),
          hookTimeout: scaled(240_000),
        },
      },
      {
        extends: true,
        test: {
          // `npm run test:e2e`: a real Infrahub (harness/infrahub.ts) backed up, wiped and restored.
          // Not part of `npm test`; CI runs it once per Neo4j version (HARNESS_NEO4J_VERSION).
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // One real deployment at a time within a run: about 3 GiB and both cores each (CI runs the
          // 5.26 run beside it, in a second process).
          fileParallelism: false,
          // A cold start initialises Infrahub (2-4 min, three-fold under load); seeding waits for
          // the task worker to generate artifacts.
          testTimeout: scaled(1_200_000),
          hookTimeout: scaled(1_800_000),
        },
      },
    ],
  },
});
