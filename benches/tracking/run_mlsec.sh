#!/usr/bin/env bash
# Runs benches/tracking/rest_bench.py against a fresh `mlsec serve` (embedded SQLite, durable
# commits: WAL with synchronous=FULL).
#   benches/tracking/run_mlsec.sh [rest_bench.py options...]
# Environment:
#   MLSEC_BIN          the mlsec binary (default: the release build under CARGO_TARGET_DIR or target/)
#   MLSEC_BENCH_VENV   venv with `requests` (default $HOME/.cache/mlsec-mlflow-bench-venv)
#   MLSEC_BENCH_DIR    data directory (default: mktemp -d, removed after)
#   MLSEC_BENCH_DATABASE_URL  run against PostgreSQL instead of the embedded SQLite file
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${MLSEC_BENCH_VENV:-$HOME/.cache/mlsec-mlflow-bench-venv}"
PY="$VENV/bin/python"
BIN="${MLSEC_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/mlsec}"
[ -x "$BIN" ] || { echo "no mlsec binary at $BIN (cargo build --release -p mlsec)" >&2; exit 1; }
if [ -n "${MLSEC_BENCH_DIR:-}" ]; then
  WORK="$MLSEC_BENCH_DIR"; KEEP=1; mkdir -p "$WORK"
else
  WORK="$(mktemp -d -t mlsec-bench.XXXXXX)"; KEEP=0
fi
PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  [ "$KEEP" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# mlsec refuses MLSEC_* variables it does not know: keep the benchmark's own out of its way.
unset MLSEC_BENCH_DIR MLSEC_BENCH_VENV MLSEC_BENCH_DATABASE_URL_SAVED 2>/dev/null || true
export MLSEC_DATA_DIR="$WORK/data"
if [ -n "${MLSEC_BENCH_DATABASE_URL:-}" ]; then export MLSEC_DATABASE_URL="$MLSEC_BENCH_DATABASE_URL"; else unset MLSEC_DATABASE_URL; fi
unset MLSEC_BENCH_DATABASE_URL MLSEC_BIN
TOKEN="$("$BIN" init | sed -n 's/.*\(mlsec_[0-9a-f_]*\).*/\1/p' | head -1)"
[ -n "$TOKEN" ] || { echo "mlsec init printed no admin token (data directory not fresh?)" >&2; exit 1; }
"$BIN" serve --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 100); do
  curl -fs "$URL/readyz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "mlsec serve exited:" >&2; tail -20 "$WORK/server.log" >&2; exit 1; }
  sleep 0.1
done
echo "mlsec $("$BIN" --version 2>/dev/null || echo '?'): serving on $URL (data $WORK/data)" >&2
"$PY" "$HERE/rest_bench.py" --url "$URL" --token "$TOKEN" --label mlsec --seed-mode rest "$@"
