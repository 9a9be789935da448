// The harness's watchdog (harness/processes.ts starts one per test process that starts a service):
// it polls the process that started it and, once that process is gone without stopping its services
// (killed by a test runner's time-out, SIGKILL, a crash), kills every PID still listed in the
// registry file, so no PostgreSQL, Neo4j or Infrahub service outlives the test that started it, then,
// once those processes are gone, removes the folders the registry lists (a cluster's data, a Neo4j
// home), so none is left behind in the temp folder either.
// Registry lines: `123` a PID to kill (negative: a process group), `wait 123` a PID the exit handler
// already killed (waited for, never signalled: it may be reused), `dir /tmp/ibh-pg-X` a folder.
// A folder is removed only when it sits directly in the OS temp folder, is a real folder (not a
// symbolic link) and is named as the harness names them; anything else is refused and left alone.
// Usage: node watchdog.mjs <parent pid> <registry file>
import { existsSync, lstatSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, normalize } from 'node:path';

const [parentArg, registry] = process.argv.slice(2);
const parent = Number(parentArg);
if (!Number.isInteger(parent) || parent <= 0 || !registry) {
  process.stderr.write('usage: node watchdog.mjs <parent pid> <registry file>\n');
  process.exit(2);
}

/** How long to wait for killed processes to disappear before removing their folders anyway (ms). */
const GONE_WITHIN_MS = 30_000;

/**
 * Whether `pid` (negative: a member of process group -pid) exists and has not exited; a zombie
 * (state Z in /proc/<pid>/stat) has exited. cli/local/proc-stat.ts processAlive, in plain JavaScript.
 */
const alive = (pid) => {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return err.code === 'EPERM';
  }
  // A process group (-pgid, as the registry lists groups): /proc knows no negative PID.
  if (pid <= 0) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return !existsSync('/proc/self/stat');
  }
};

/** The temp folder as named and as resolved (it may itself be a symbolic link, as on macOS). */
const tempRoots = () => {
  const roots = new Set([normalize(tmpdir())]);
  try {
    roots.add(realpathSync(tmpdir()));
  } catch {
    // no temp folder: no folder can be in it
  }
  return roots;
};

/** Whether `dir` is one the harness may have made: `<tmpdir>/<name>`, a real folder, no link. */
const removable = (dir, roots) => {
  if (!isAbsolute(dir) || normalize(dir) !== dir) return false;
  const name = basename(dir);
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(name)) return false;
  if (!roots.has(dirname(dir))) return false;
  try {
    const stat = lstatSync(dir);
    if (!stat.isDirectory() || stat.isSymbolicLink()) return false;
    // The parent resolves to the temp folder too (no link on the way).
    return roots.has(dirname(realpathSync(dir))) && basename(realpathSync(dir)) === name;
  } catch {
    return false;
  }
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function cleanUp() {
  let lines = [];
  try {
    lines = readFileSync(registry, 'utf8').split('\n');
  } catch {
    // no registry: nothing left to stop
  }
  const kill = [];
  const wait = [];
  const dirs = [];
  for (const line of lines) {
    if (line.startsWith('dir ')) dirs.push(line.slice(4));
    else if (line.startsWith('wait ')) wait.push(Number(line.slice(5)));
    else kill.push(Number(line));
  }
  const pids = (list) => list.filter((pid) => Number.isInteger(pid) && pid !== 0);
  for (const pid of pids(kill)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const all = [...pids(kill), ...pids(wait)];
  const deadline = Date.now() + GONE_WITHIN_MS;
  while (all.some(alive) && Date.now() < deadline) await sleep(100);
  const roots = tempRoots();
  for (const dir of dirs) {
    if (!removable(dir, roots)) {
      process.stderr.write(
        `watchdog: not removing ${JSON.stringify(dir)}: not a folder of its own in ${tmpdir()}\n`,
      );
      continue;
    }
    try {
      // Recursive removal unlinks symbolic links inside, never what they point to.
      rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    } catch {
      // left for the OS's temp cleaning
    }
  }
  rmSync(registry, { force: true });
  rmSync(`${registry}.next`, { force: true });
  process.exit(0);
}

const timer = setInterval(() => {
  if (alive(parent)) return;
  clearInterval(timer);
  void cleanUp();
}, 500);
