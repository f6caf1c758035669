#!/usr/bin/env bash
# Signing throughput: mlsec (OMS v1.0, files/SHA-256, P-256) vs parallel `openssl dgst -sha256`
# over the same files vs the `model_signing` reference CLI, on one 10 GiB model directory with a
# few large shards and many small files, page cache warm. See README.md.
#
#   bash benches/signing/run.sh
#
# Environment:
#   DATA        where the model directory is made (default /tmp/mlsec-sign-bench; ~10 GiB)
#   LARGE_GIB   size of each of the 4 large shards in GiB (default 2.25)
#   SMALL       number of 1 MiB small files (default 1024)
#   RUNS        repetitions, the median is reported (default 3)
#   OMS_VENV    venv with model-signing (default $HOME/.cache/mlsec-oms-venv)
#   KEEP=1      keep the data afterwards
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
DATA="${DATA:-/tmp/mlsec-sign-bench}"
LARGE_GIB="${LARGE_GIB:-2.25}"
SMALL="${SMALL:-1024}"
RUNS="${RUNS:-3}"
OMS_VENV="${OMS_VENV:-$HOME/.cache/mlsec-oms-venv}"
JOBS="$(nproc)"
MODEL="$DATA/model"

if [[ ! -x "$OMS_VENV/bin/model_signing" ]]; then
  python3 -m venv "$OMS_VENV"
  "$OMS_VENV/bin/pip" install -q "model-signing==1.1.1" "pyopenssl==26.4.0"
fi

# --- data: pseudo-random bytes from AES-CTR (incompressible, fast to make) --------------------
large_bytes="$(python3 -c "print(int($LARGE_GIB * (1 << 30)))")"
if [[ ! -f "$MODEL/.complete-$LARGE_GIB-$SMALL" ]]; then
  rm -rf "$MODEL"; mkdir -p "$MODEL/small"
  echo "making $MODEL: 4 x $LARGE_GIB GiB + $SMALL x 1 MiB" >&2
  for i in 1 2 3 4; do
    { openssl enc -aes-128-ctr -pass "pass:shard$i" -nosalt -pbkdf2 < /dev/zero 2>/dev/null || true; } \
      | head -c "$large_bytes" > "$MODEL/model-0000$i-of-00004.safetensors"
  done
  { openssl enc -aes-128-ctr -pass pass:small -nosalt -pbkdf2 < /dev/zero 2>/dev/null || true; } \
    | head -c "$((SMALL << 20))" | split -b 1M -a 4 -d - "$MODEL/small/part-"
  printf '{"architectures": ["Bench"]}\n' > "$MODEL/config.json"
  touch "$MODEL/.complete-$LARGE_GIB-$SMALL"
fi
rm -f "$MODEL/.complete-$LARGE_GIB-$SMALL.sig"
total_bytes="$(find "$MODEL" -type f ! -name '.complete-*' -printf '%s\n' | awk '{s+=$1} END {print s}')"
# The marker file is part of the tree for every tool alike; it is 0 bytes.

# --- builds ---------------------------------------------------------------------------------
cd "$REPO"
cargo build --release --locked -p mlsec-attest --example oms_bench >&2
BENCH="${CARGO_TARGET_DIR:-$REPO/target}/release/examples/oms_bench"
KEY="$DATA/key.pem"; PUB="$DATA/key.pub"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$KEY" 2>/dev/null
openssl pkey -in "$KEY" -pubout -out "$PUB"

# Warm the page cache: every tool then reads from memory, so the figures compare hashing and
# parallelism rather than the disk.
cat "$MODEL"/*.safetensors "$MODEL"/small/* "$MODEL/config.json" > /dev/null

# openssl: large files one per process, small files in batches of 128, $JOBS processes at once.
openssl_once() {
  { ls "$MODEL"/*.safetensors; find "$MODEL/small" -type f | xargs -n 128 echo; echo "$MODEL/config.json"; } \
    | xargs -P "$JOBS" -L 1 openssl dgst -sha256 > /dev/null
}
seconds() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -a o_t m_sign m_verify r_sign r_verify
for run in $(seq 1 "$RUNS"); do
  echo "run $run/$RUNS" >&2
  o_t+=("$(seconds openssl_once)")
  out="$("$BENCH" "$MODEL")"
  m_sign+=("$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['sign_s'])" "$out")")
  m_verify+=("$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['verify_s'])" "$out")")
  r_sign+=("$(seconds "$OMS_VENV/bin/model_signing" sign key "$MODEL" --private_key "$KEY" --signature "$DATA/ref.sig")")
  r_verify+=("$(seconds "$OMS_VENV/bin/model_signing" verify key "$MODEL" --signature "$DATA/ref.sig" --public_key "$PUB")")
done

python3 - "$total_bytes" "$JOBS" \
  "$(printf '%s\n' "${o_t[@]}" | median)" \
  "$(printf '%s\n' "${m_sign[@]}" | median)" "$(printf '%s\n' "${m_verify[@]}" | median)" \
  "$(printf '%s\n' "${r_sign[@]}" | median)" "$(printf '%s\n' "${r_verify[@]}" | median)" \
  "${o_t[*]}" "${m_sign[*]}" "${m_verify[*]}" "${r_sign[*]}" "${r_verify[*]}" <<'PY'
import sys
total, jobs = int(sys.argv[1]), int(sys.argv[2])
o, ms, mv, rs, rv = map(float, sys.argv[3:8])
gib = total / (1 << 30)
print(f"\n### OMS signing, {gib:.2f} GiB ({total:,} bytes), {jobs} cores, page cache warm, median of runs\n")
print("| tool | seconds | GiB/s | vs parallel openssl |")
print("|---|---:|---:|---:|")
for name, t in [("parallel `openssl dgst -sha256`", o), ("mlsec sign", ms), ("mlsec verify", mv),
                ("model_signing sign key", rs), ("model_signing verify key", rv)]:
    print(f"| {name} | {t:.2f} | {gib / t:.2f} | {o / t * 100:.0f} % |")
print(f"\nmlsec sign is {rs / ms:.2f}x faster than model_signing sign; verify {rv / mv:.2f}x.")
print("runs (s): openssl", sys.argv[8], "| mlsec sign", sys.argv[9], "| mlsec verify", sys.argv[10],
      "| model_signing sign", sys.argv[11], "| model_signing verify", sys.argv[12])
PY
if [[ -z "${KEEP:-}" ]]; then rm -rf "$DATA"; fi
