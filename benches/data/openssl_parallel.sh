#!/usr/bin/env bash
# Baseline for the mlsec file-hashing benchmark: SHA-256 of every regular file
# under DIR with `openssl dgst -sha256`, JOBS processes at a time
# (find -print0 | xargs -0 -P JOBS). Digests are discarded; only the timing is
# reported, as one JSON line on stdout:
#   {"tool":"openssl dgst -sha256 (parallel JOBS)","files":N,"bytes":B,
#    "wall_s":..,"cpu_s":..}
# cpu_s is user+sys of the whole pipeline (find, xargs and every openssl),
# measured with /usr/bin/time when present, else bash's `time`.
#
# Usage: openssl_parallel.sh DIR [JOBS]     (JOBS defaults to nproc)
# Env:   BATCH=N  files per openssl invocation (default 8; 1 = one process
#                 per file). Use a tree from make_tree.sh, and drop or warm the
#                 page cache the same way for every tool compared.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 || ! -d $1 ]]; then
    echo "usage: $0 DIR [JOBS]" >&2
    exit 2
fi
dir=$1
jobs=${2:-$(nproc)}
batch=${BATCH:-8}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "JOBS must be a positive integer" >&2; exit 2; }
[[ $batch =~ ^[1-9][0-9]*$ ]] || { echo "BATCH must be a positive integer" >&2; exit 2; }
command -v openssl >/dev/null || { echo "openssl not found" >&2; exit 1; }

# Counted outside the timed part.
read -r files bytes < <(find "$dir" -type f -printf '%s\n' |
    awk '{n++; b+=$1} END {printf "%d %.0f\n", n, b}')

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

hash_all() {
    find "$1" -type f -print0 |
        xargs -0 -r -n "$2" -P "$3" openssl dgst -sha256 >/dev/null
}
export -f hash_all

if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -f '%e %U %S' -o "$tmp/t" \
        bash -c 'set -o pipefail; hash_all "$@"' _ "$dir" "$batch" "$jobs"
    read -r wall user sys < "$tmp/t"
else
    TIMEFORMAT='%R %U %S'
    { time hash_all "$dir" "$batch" "$jobs" 2>"$tmp/err"; } 2>"$tmp/t"
    cat "$tmp/err" >&2
    read -r wall user sys < "$tmp/t"
fi

cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}')
printf '{"tool":"openssl dgst -sha256 (parallel %d)","files":%d,"bytes":%s,"wall_s":%s,"cpu_s":%s}\n' \
    "$jobs" "$files" "$bytes" "$wall" "$cpu"
