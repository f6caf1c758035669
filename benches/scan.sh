#!/usr/bin/env bash
# Benchmark of `mlsec scan` against modelscan and picklescan (from PyPI) on the same files.
#   benches/scan.sh [WORKDIR]
# Needs: a release build of mlsec, python3; installs modelscan and picklescan into the test venv.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mlsec-target}"
WORK="${1:-$(mktemp -d)}"
VENV="${MLSEC_TEST_VENV:-$HOME/.cache/mlsec-venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check modelscan picklescan
cargo build --release -q -p mlsec
MLSEC="$CARGO_TARGET_DIR/release/mlsec"
mkdir -p "$WORK"

python3 - "$WORK" <<'PY'
import io, os, pickle, shutil, struct, sys, zipfile
work = sys.argv[1]
floats = os.path.join(work, "floats_100mb.pkl")
if not os.path.exists(floats):
    with open(floats, "wb") as f:
        pickle.dump([i * 0.5 for i in range(11_600_000)], f, protocol=4)
ckpt = os.path.join(work, "checkpoint_1gib.pt")
src = os.path.join(os.path.dirname(os.path.abspath(".")), "")
fixture = os.path.join("crates/mlsec-scan/fixtures/benign/torch_state_dict_data.pkl")
if not os.path.exists(ckpt):
    with zipfile.ZipFile(ckpt, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        z.writestr("archive/data.pkl", open(fixture, "rb").read())
        z.writestr("archive/byteorder", b"little")
        with z.open(zipfile.ZipInfo("archive/data/0", (2026, 1, 1, 0, 0, 0)), "w", force_zip64=True) as w:
            block = struct.pack("<262144f", *([0.125] * 262144))
            for _ in range(1024):
                w.write(block)
        z.writestr("archive/version", b"3\n")
many = os.path.join(work, "many")
if not os.path.isdir(many):
    os.makedirs(many)
    small = open("crates/mlsec-scan/fixtures/benign/torch_checkpoint.pt", "rb").read()
    for i in range(1000):
        with open(os.path.join(many, f"model_{i:04d}.pt"), "wb") as f:
            f.write(small)
PY

measure() { # label, command...
  local label="$1"; shift
  local stats="$WORK/.time"
  /usr/bin/time -o "$stats" -f "%e %M" "$@" >/dev/null 2>&1 || true
  read -r secs kib < <(tail -1 "$stats")
  printf '%-44s %8s s %8s MiB\n' "$label" "$secs" "$(( kib / 1024 ))"
}

printf '%-44s %10s %12s\n' "run" "wall" "max RSS"
for target in floats_100mb.pkl checkpoint_1gib.pt many; do
  for i in 1 2 3; do
    measure "mlsec scan $target (run $i)" "$MLSEC" scan --allow-unscanned "$WORK/$target"
  done
  measure "modelscan $target" "$VENV/bin/modelscan" -p "$WORK/$target"
  measure "picklescan $target" "$VENV/bin/picklescan" -p "$WORK/$target"
done
