#!/usr/bin/env bash
# Builds the input tree for the file-hashing benchmarks:
#   DIR/small/f0000 .. DIR/small/f0999   1000 files of 1 MiB
#   DIR/big.bin                          one file of 512 MiB
# (~1.5 GiB in all) of pseudo-random bytes: AES-128-CTR keystream over
# /dev/zero with a fixed key and IV, so the tree (and its digests) is the same
# on every machine. Parts already present with the right sizes are kept.
#
# Usage: make_tree.sh DIR
# Env (for tests only): SMALL_COUNT (1000), SMALL_SIZE (1048576),
#                       BIG_SIZE (536870912) in bytes.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
count=${SMALL_COUNT:-1000}
size=${SMALL_SIZE:-1048576}
big=${BIG_SIZE:-536870912}
key=000102030405060708090a0b0c0d0e0f

# N bytes of keystream for IV $1 to stdout. head closes the pipe early, so
# openssl's exit status (SIGPIPE) is ignored; sizes are checked afterwards.
stream() {
    local iv=$1 n=$2
    { openssl enc -aes-128-ctr -K "$key" -iv "$iv" -nosalt -in /dev/zero 2>/dev/null || true; } |
        head -c "$n"
}

fsize() { stat -c %s "$1" 2>/dev/null || echo -1; }

mkdir -p "$dir"

small_ok() {
    [[ -d $dir/small ]] || return 1
    local n
    n=$(find "$dir/small" -maxdepth 1 -type f -size "${size}c" | wc -l)
    [[ $n -eq $count ]] &&
        [[ $(find "$dir/small" -mindepth 1 -maxdepth 1 | wc -l) -eq $count ]]
}

if small_ok; then
    echo "$dir/small: $count files of $size bytes already there, kept" >&2
else
    rm -rf "$dir/small.tmp"
    mkdir "$dir/small.tmp"
    stream 00000000000000000000000000000001 $((count * size)) |
        split -b "$size" -a 4 -d - "$dir/small.tmp/f"
    rm -rf "$dir/small"
    mv "$dir/small.tmp" "$dir/small"
    small_ok || { echo "$dir/small: wrong contents after generation" >&2; exit 1; }
    echo "$dir/small: wrote $count files of $size bytes" >&2
fi

if [[ $(fsize "$dir/big.bin") -eq $big ]]; then
    echo "$dir/big.bin: $big bytes already there, kept" >&2
else
    stream 00000000000000000000000000000002 "$big" > "$dir/big.bin.tmp"
    [[ $(fsize "$dir/big.bin.tmp") -eq $big ]] ||
        { echo "$dir/big.bin: short write" >&2; exit 1; }
    mv "$dir/big.bin.tmp" "$dir/big.bin"
    echo "$dir/big.bin: wrote $big bytes" >&2
fi
