#!/usr/bin/env bash
# Guard latency: mlsec-guard's default input pipeline vs LLM Guard's model-free input scanners,
# on the same 300 prompts, each side single-threaded and pinned to CPU 0. See README.md.
#
#   bash benches/guard/run.sh
#
# Environment:
#   OUT            results folder                 (default: <repo>/target/guard-bench)
#   LLMGUARD_VENV  venv for LLM Guard             (default: $HOME/.cache/mlsec-llmguard-venv)
#   LIMIT          use only the first N prompts   (default: all; LLM Guard side only)
#   SKIP_MLSEC=1 / SKIP_LLMGUARD=1   reuse that side's JSON from an earlier run in $OUT
set -euo pipefail

LLM_GUARD_VERSION=0.3.16
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="${OUT:-$REPO/target/guard-bench}"
VENV="${LLMGUARD_VENV:-$HOME/.cache/mlsec-llmguard-venv}"
PROMPTS="$HERE/prompts.jsonl"
mkdir -p "$OUT"

export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1

PIN=(taskset -c 0)
if ! command -v taskset >/dev/null; then
  echo "warning: taskset not found; running unpinned" >&2
  PIN=()
fi

# --- LLM Guard venv --------------------------------------------------------------------------
if [[ -z "${SKIP_LLMGUARD:-}" ]]; then
  if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('llm-guard') != '$LLM_GUARD_VERSION')" 2>/dev/null; then
    extra=()
    # llm-guard requires torch; take the CPU-only wheels when their index is reachable
    # (otherwise pip takes the default CUDA build from PyPI, ~3 GB of downloads).
    if command -v curl >/dev/null && curl -fsS -m 5 -o /dev/null "$TORCH_CPU_INDEX/" 2>/dev/null; then
      extra=(--extra-index-url "$TORCH_CPU_INDEX")
    fi
    echo "installing llm-guard==$LLM_GUARD_VERSION into $VENV ${extra[*]+"${extra[*]}"}" >&2
    "$VENV/bin/python" -m pip install --progress-bar off ${extra[@]+"${extra[@]}"} "llm-guard==$LLM_GUARD_VERSION" >&2
  fi
fi

# --- prompts ---------------------------------------------------------------------------------
if [[ ! -f "$PROMPTS" ]]; then
  python3 "$HERE/make_prompts.py" --out "$PROMPTS"
fi

# --- mlsec-guard -----------------------------------------------------------------------------
if [[ -z "${SKIP_MLSEC:-}" ]]; then
  cd "$REPO"
  # Build on all cores first, so the pinned `cargo run` below only runs the binary.
  cargo build --release --locked -p mlsec-guard --example guard_bench >&2
  echo "running mlsec-guard guard_bench (taskset -c 0)" >&2
  "${PIN[@]}" cargo run --release --locked -p mlsec-guard --example guard_bench -- \
    --prompts benches/guard/prompts.jsonl --json-out "$OUT/mlsec.json" > "$OUT/mlsec.stdout"
fi

# --- LLM Guard -------------------------------------------------------------------------------
if [[ -z "${SKIP_LLMGUARD:-}" ]]; then
  limit=()
  if [[ -n "${LIMIT:-}" ]]; then limit=(--limit "$LIMIT"); fi
  echo "running llm_guard_bench.py (taskset -c 0)" >&2
  "${PIN[@]}" "$VENV/bin/python" "$HERE/llm_guard_bench.py" --prompts "$PROMPTS" \
    --json-out "$OUT/llm_guard.json" ${limit[@]+"${limit[@]}"} > "$OUT/llm_guard.stdout"
fi

# --- table -----------------------------------------------------------------------------------
python3 - "$OUT/mlsec.json" "$OUT/llm_guard.json" <<'PY'
import json, sys

def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"cannot read {path}: {e}", file=sys.stderr)
        return None

ms, lg = load(sys.argv[1]), load(sys.argv[2])
if not ms or not lg:
    sys.exit(1)

def num(x):
    return f"{x:,.1f}" if isinstance(x, (int, float)) else "n/a"

def ratio(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0:
        return f"{a / b:,.1f}x"
    return "n/a"

m50, m99 = ms.get("input_p50_us"), ms.get("input_p99_us")
v = lg.get("versions", {})
print(f"\n### Input scan latency per prompt ({lg.get('prompts')} prompts x {lg.get('passes')} passes, "
      f"~1.4 kB each, one thread pinned to CPU 0)\n")
print(f"mlsec-guard default input pipeline vs LLM Guard {v.get('llm_guard')} (Python {v.get('python')}); "
      "ratio = LLM Guard / mlsec.\n")
print("| LLM Guard | LLM Guard p50 us | LLM Guard p99 us | mlsec p50 us | mlsec p99 us | ratio p50 | ratio p99 |")
print("|---|---:|---:|---:|---:|---:|---:|")
rows = list(lg["scanners"].items()) + [("sequence of the four (`scan_prompt`)", lg["sequence"])]
for name, r in rows:
    print(f"| {name} | {num(r['p50_us'])} | {num(r['p99_us'])} | {num(m50)} | {num(m99)} | "
          f"{ratio(r['p50_us'], m50)} | {ratio(r['p99_us'], m99)} |")

dets = ms.get("detectors") or {}
if dets:
    print("\nmlsec-guard per detector:\n")
    print("| detector | p50 us | p99 us |")
    print("|---|---:|---:|")
    for k, d in dets.items():
        print(f"| {k} | {num(d.get('p50_us'))} | {num(d.get('p99_us'))} |")
if "stream_chunk_p50_us" in ms:
    print(f"\nmlsec-guard stream chunk: p50 {num(ms.get('stream_chunk_p50_us'))} us, "
          f"p99 {num(ms.get('stream_chunk_p99_us'))} us")
if lg.get("network_attempts"):
    print(f"\nWARNING: LLM Guard tried the network: {lg['network_attempts']}")
PY
