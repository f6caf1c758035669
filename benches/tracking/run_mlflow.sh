#!/usr/bin/env bash
# Runs benches/tracking/rest_bench.py against a fresh `mlflow server` (SQLite backend).
#   benches/tracking/run_mlflow.sh [rest_bench.py options...]
# e.g. benches/tracking/run_mlflow.sh --metric-calls 2000 --max-seconds 60 --json-out /tmp/mlflow.json
#
# Starts mlflow server in a temporary directory, waits until /health answers, seeds the search
# workload straight into its SQLite file (--seed-mode mlflow-sqlite), runs the benchmark and stops
# the server. Environment:
#   MLSEC_BENCH_VENV       venv with `mlflow` and `requests` (default $HOME/.cache/mlsec-mlflow-bench-venv)
#   MLFLOW_BENCH_WORKERS   uvicorn worker processes (default 1; mlflow's own default is 4)
#   MLFLOW_BENCH_PORT      port (default: a free one)
#   MLFLOW_BENCH_SETTLE    seconds to wait after /health before measuring (default 10)
#   MLFLOW_BENCH_DIR       working directory for db + artifacts + log (default: mktemp -d, removed after)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="${MLSEC_BENCH_VENV:-$HOME/.cache/mlsec-mlflow-bench-venv}"
PY="$VENV/bin/python"
[ -x "$VENV/bin/mlflow" ] || { echo "no mlflow in $VENV (set MLSEC_BENCH_VENV)" >&2; exit 1; }
WORKERS="${MLFLOW_BENCH_WORKERS:-1}"
PORT="${MLFLOW_BENCH_PORT:-$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
if [ -n "${MLFLOW_BENCH_DIR:-}" ]; then
  WORK="$MLFLOW_BENCH_DIR"; KEEP=1; mkdir -p "$WORK"
else
  WORK="$(mktemp -d -t mlflow-bench.XXXXXX)"; KEEP=0
fi
DB="$WORK/db.sqlite"
URL="http://127.0.0.1:$PORT"
VERSION="$("$PY" -c 'import mlflow; print(mlflow.__version__)')"

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    # mlflow server runs uvicorn plus job-runner processes; they share the process group that
    # setsid created for SERVER_PID.
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
  fi
  [ "$KEEP" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

echo "mlflow $VERSION: starting server on $URL (workers $WORKERS, db $DB)" >&2
setsid "$VENV/bin/mlflow" server \
  --backend-store-uri "sqlite:///$DB" \
  --default-artifact-root "$WORK/artifacts" \
  --host 127.0.0.1 --port "$PORT" --workers "$WORKERS" \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

for i in $(seq 120); do
  if "$PY" -c 'import sys, requests; sys.exit(0 if requests.get(sys.argv[1] + "/health", timeout=2).status_code == 200 else 1)' "$URL" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "mlflow server exited:" >&2; tail -20 "$WORK/server.log" >&2; exit 1
  fi
  [ "$i" = 120 ] && { echo "mlflow server did not answer /health in 120 s" >&2; tail -20 "$WORK/server.log" >&2; exit 1; }
  sleep 1
done
# /health answers before mlflow's job-runner processes have finished importing; let them settle.
SETTLE="${MLFLOW_BENCH_SETTLE:-10}"
echo "mlflow server up (pid $SERVER_PID); settling ${SETTLE} s" >&2
sleep "$SETTLE"

set +e
"$PY" "$HERE/rest_bench.py" --url "$URL" --label "mlflow-$VERSION-w$WORKERS" \
  --seed-mode mlflow-sqlite --mlflow-db "$DB" "$@"
rc=$?
set -e
exit $rc
