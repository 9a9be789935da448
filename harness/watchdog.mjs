// The harness's watchdog (harness/processes.ts starts one per test process that starts a service):
// it polls the process that started it and, once that process is gone without stopping its services
// (killed by a test runner's time-out, SIGKILL, a crash), kills every PID still listed in the
// registry file, so no PostgreSQL, Neo4j or Infrahub service outlives the test that started it.
// A negative PID is a process group. Usage: node watchdog.mjs <parent pid> <registry file>
import { readFileSync, rmSync } from 'node:fs';

const [parentArg, registry] = process.argv.slice(2);
const parent = Number(parentArg);
if (!Number.isInteger(parent) || parent <= 0 || !registry) {
  process.stderr.write('usage: node watchdog.mjs <parent pid> <registry file>\n');
  process.exit(2);
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
};

const timer = setInterval(() => {
  if (alive(parent)) return;
  clearInterval(timer);
  let pids = [];
  try {
    pids = readFileSync(registry, 'utf8')
      .split('\n')
      .map(Number)
      .filter((pid) => Number.isInteger(pid) && pid !== 0);
  } catch {
    // no registry: nothing left to stop
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(registry, { force: true });
  process.exit(0);
}, 500);
