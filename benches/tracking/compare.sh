#!/usr/bin/env bash
# The tracking benchmark: the same REST workload against `mlflow server` (SQLite) and
# `mlsec serve` (SQLite, durable commits) in one run, then the ratios.
#   benches/tracking/compare.sh [rest_bench.py options...]
# e.g. benches/tracking/compare.sh --metric-calls 20000 --batch-calls 200 --search-runs 100000 --search-iters 10
# Needs the release build (cargo build --release -p mlsec) and the venv of run_mlflow.sh.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${TRACKING_BENCH_OUT:-$(mktemp -d -t tracking-bench.XXXXXX)}"
mkdir -p "$OUT"
# MLflow cannot take 20,000 single calls in a minute; its rows stop on --max-seconds.
"$HERE/run_mlflow.sh" "$@" --json-out "$OUT/mlflow.json" >"$OUT/mlflow.txt"
"$HERE/run_mlsec.sh" "$@" --json-out "$OUT/mlsec.json" >"$OUT/mlsec.txt"
cat "$OUT/mlflow.txt" "$OUT/mlsec.txt" | grep -v '^{' || true
python3 - "$OUT/mlflow.json" "$OUT/mlsec.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def rows(d):
    out = {}
    for r in d.get("single", []) + d.get("batch", []):
        out[(r["workload"], r["threads"])] = r["metrics_per_s"]
    for q in d.get("search", {}).get("queries", []):
        out[(q["workload"], "p50 ms")] = q["p50_ms"]
    return out
ra, rb = rows(a), rows(b)
print(f"\n{'workload':<40} {'mlflow':>12} {'mlsec':>12} {'ratio':>8}")
for k in ra:
    if k in rb:
        x, y = ra[k], rb[k]
        ratio = (x / y) if k[1] == "p50 ms" else (y / x)
        print(f"{k[0] + ' / ' + str(k[1]):<40} {x:>12.1f} {y:>12.1f} {ratio:>7.1f}x")
PY
echo "raw results in $OUT" >&2
