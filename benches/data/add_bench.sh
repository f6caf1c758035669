#!/usr/bin/env bash
# `mlsec data add` of ~1.5 GiB (1,000 × 1 MiB files + one 512 MiB file) against parallel
# `openssl dgst -sha256` over the same files, in the same run, page cache warm for both.
# mlsec does more than hash: it also writes every byte into the blob store (fsynced) and records
# the version with its audit event.
#
# Usage: benches/data/add_bench.sh [TREE_DIR] [MLSEC_BINARY]
#   TREE_DIR defaults to $TMPDIR/mlsec-add-tree (built by make_tree.sh if missing);
#   MLSEC_BINARY defaults to the release binary under $CARGO_TARGET_DIR (or target/).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tree="${1:-${TMPDIR:-/tmp}/mlsec-add-tree}"
bin="${2:-${CARGO_TARGET_DIR:-$here/../../target}/release/mlsec}"
[[ -x $bin ]] || { echo "build it first: cargo build --release -p mlsec ($bin)" >&2; exit 2; }
"$here/make_tree.sh" "$tree" >&2
# DROP_CACHES=1 (root) starts from an empty page cache, so runs do not inherit each other's
# dirty or cached pages; the tree is then read once so both tools hash from memory.
if [[ ${DROP_CACHES:-0} == 1 ]]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi
# Warm the page cache the same way for both tools.
find "$tree" -type f -exec cat {} + > /dev/null

"$here/openssl_parallel.sh" "$tree" >/dev/null          # warm-up
openssl_json="$("$here/openssl_parallel.sh" "$tree")"

runs=()
for i in 1 2; do
  data="$(mktemp -d "${TMPDIR:-/tmp}/mlsec-add-data.XXXXXX")"
  "$bin" --data-dir "$data/d" init > /dev/null
  start=$(date +%s.%N)
  t="$( { /usr/bin/time -f '%U %S' "$bin" --data-dir "$data/d" data add "$tree" --dataset bench \
        -m "benchmark" > /dev/null; } 2>&1 | tail -1)"
  end=$(date +%s.%N)
  read -r user sys <<< "$t"
  runs+=("$(awk -v s="$start" -v e="$end" -v u="$user" -v y="$sys" 'BEGIN {printf "%.3f %.3f %.3f %.3f", e - s, u + y, u, y}')")
  # verify re-hashes the working copy only (no writes): the like-for-like hashing comparison.
  vstart=$(date +%s.%N)
  "$bin" --data-dir "$data/d" data verify bench@1 "$tree" > /dev/null
  vend=$(date +%s.%N)
  verify_wall="$(awk -v s="$vstart" -v e="$vend" 'BEGIN {printf "%.3f", e - s}')"
  rm -rf "$data"
done
read -r wall cpu user sys <<< "${runs[1]}"
echo "$openssl_json"
printf '{"tool":"mlsec data add","wall_s":%s,"cpu_s":%s,"user_s":%s,"sys_s":%s}\n' "$wall" "$cpu" "$user" "$sys"
printf '{"tool":"mlsec data verify","wall_s":%s}\n' "$verify_wall"
ow="$(sed -E 's/.*"wall_s":([0-9.]+).*/\1/' <<< "$openssl_json")"
awk -v m="$wall" -v v="$verify_wall" -v o="$ow" 'BEGIN {printf "{\"ratio_add_over_openssl\":%.2f,\"ratio_verify_over_openssl\":%.2f}\n", m / o, v / o}'
