#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, starts PostgreSQL if it is
# not running, then runs formatting, lints, and every test against SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

# Builds are cached outside the clone, so a fresh clone reuses earlier compilation.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mlsec-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_INCREMENTAL=0

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  local host=127.0.0.1 port=5432
  if ! command -v pg_isready >/dev/null; then
    log "installing PostgreSQL from the Debian packages"
    apt_install postgresql
  fi
  if ! pg_isready -q -h "$host" -p "$port"; then
    log "starting PostgreSQL"
    local version
    version="$(ls /etc/postgresql | sort -V | tail -1)"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h "$host" -p "$port" && break; sleep 1; done
  fi
  pg_isready -h "$host" -p "$port"
  if ! psql -h "$host" -U postgres -d test -qtAc 'SELECT 1' >/dev/null 2>&1; then
    createdb -h "$host" -U postgres test
  fi
  export MLSEC_TEST_DATABASE_URL="postgres://postgres@$host:$port/test"
}

ensure_rust_tools() {
  command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 2; }
  rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy
}

# Real clients and servers for interop tests live in a venv outside the clone.
ensure_venv() {
  local venv="${MLSEC_TEST_VENV:-$HOME/.cache/mlsec-venv}"
  # moto: an S3 endpoint for the object-store tests; mlflow-skinny: the MLflow client the
  # tracking-API interop test drives (version documented in docs/mlflow.md).
  local want="moto[server]==5.2.1 mlflow-skinny==3.17.2"
  if [ ! -x "$venv/bin/python" ]; then
    log "creating the interop venv at $venv"
    python3 -m venv "$venv"
  fi
  if [ "$(cat "$venv/.mlsec-requirements" 2>/dev/null)" != "$want" ]; then
    log "installing $want"
    # shellcheck disable=SC2086 # one word per requirement
    "$venv/bin/pip" install -q --disable-pip-version-check $want
    echo "$want" > "$venv/.mlsec-requirements"
  fi
  export MLSEC_TEST_MOTO_SERVER="$venv/bin/moto_server"
  export MLSEC_TEST_PYTHON="$venv/bin/python"

  # model-signing: the OpenSSF reference implementation that the signing interop tests run both
  # ways. Its own venv: it needs newer protobuf than mlflow-skinny allows. 1.1.1 imports
  # pyOpenSSL without declaring it (docs/signing.md).
  local oms_venv="${MLSEC_TEST_OMS_VENV:-$HOME/.cache/mlsec-oms-venv}"
  local oms_want="model-signing==1.1.1 pyopenssl==26.4.0"
  if [ ! -x "$oms_venv/bin/python" ]; then
    log "creating the model-signing venv at $oms_venv"
    python3 -m venv "$oms_venv"
  fi
  if [ "$(cat "$oms_venv/.mlsec-requirements" 2>/dev/null)" != "$oms_want" ]; then
    log "installing $oms_want"
    # shellcheck disable=SC2086 # one word per requirement
    "$oms_venv/bin/pip" install -q --disable-pip-version-check $oms_want
    echo "$oms_want" > "$oms_venv/.mlsec-requirements"
  fi
  export MLSEC_TEST_MODEL_SIGNING="$oms_venv/bin/model_signing"
  export MLSEC_TEST_OMS_PYTHON="$oms_venv/bin/python"
}

# The dataset check report is rendered in headless Chromium by a test.
ensure_chromium() {
  if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
    log "installing Chromium from the Debian packages (report rendering test)"
    apt_install chromium
  fi
}

ensure_rust_tools
ensure_postgres
ensure_venv
ensure_chromium

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

log "tests (SQLite always; PostgreSQL at $MLSEC_TEST_DATABASE_URL; S3 via $MLSEC_TEST_MOTO_SERVER; MLflow client via $MLSEC_TEST_PYTHON)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --locked --no-fail-fast
else
  cargo test --workspace --all-features --locked --no-fail-fast
fi
