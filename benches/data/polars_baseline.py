#!/usr/bin/env python3
# Baseline for the mlsec data-profiling / drift benchmark: the same work done
# with polars (+ numpy/scipy), to compare wall time, CPU time and peak RSS.
#
# Usage:
#   polars_baseline.py REFERENCE.parquet CURRENT.parquet [--json]
#
# For each file and each column: rows, count (non-null), null count, approx
# distinct (pl.Expr.approx_n_unique; null counts as one value), and
#   numeric columns  (ints, floats): min, max, mean, std (ddof=1), NaN count,
#                    quantiles 0.01 0.05 0.25 0.5 0.75 0.95 0.99 (linear
#                    interpolation), 20-bin equal-width histogram over the
#                    min..max of both files combined (last bin closed);
#                    nulls and NaNs are left out of these.
#   string, categorical, enum, boolean columns: top 10 categories with counts
#                    (nulls left out).
#   other types:     only rows / count / null count / approx distinct.
# Drift, for each column present in both files:
#   numeric:     scipy.stats.wasserstein_distance(ref, cur) / numpy.std(ref)
#                (ddof=0, as in crates/mlsec-data/tests/fixtures/stats_kat.json;
#                null when the reference std is 0)
#   categorical: scipy.spatial.distance.jensenshannon over the proportions of
#                all categories of both files (natural log).
#
# Output (stdout): without --json a readable per-column summary; with --json
# the full report as one JSON object on one line. The last line is always:
#   {"tool":"polars <version>","rows_ref":..,"rows_cur":..,"wall_s":..,
#    "cpu_s":..,"peak_rss_mb":..}
# wall_s counts from process start (imports included); cpu_s is
# getrusage(RUSAGE_SELF) + getrusage(RUSAGE_CHILDREN), user + sys;
# peak_rss_mb is the larger ru_maxrss of the two (KiB on Linux) / 1024.
#
# Environment used (smoke-tested with Python 3.11.7):
#   python3 -m venv "$HOME/.cache/mlsec-bench-venv"
#   "$HOME/.cache/mlsec-bench-venv/bin/pip" install polars==2.1.0 \
#       numpy==2.4.6 scipy==1.17.1 pyarrow==26.0.1
#   "$HOME/.cache/mlsec-bench-venv/bin/python" benches/data/polars_baseline.py \
#       ref.parquet cur.parquet --json
# (polars 2.1.0 installs polars-runtime-32==2.1.0 alongside it.)

import time

_T0 = time.perf_counter()

import json  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from scipy import stats  # noqa: E402
from scipy.spatial import distance  # noqa: E402

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
BINS = 20
TOP_K = 10


def kind(dtype):
    if dtype.is_numeric():
        return "numeric"
    if dtype in (pl.String, pl.Boolean, pl.Categorical, pl.Enum):
        return "categorical"
    return "other"


def clean(x):
    """JSON-safe scalar: NaN/inf -> None, numpy scalars -> Python."""
    if x is None:
        return None
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def numeric_values(df, col):
    """Column as float64 numpy array, nulls and NaNs removed."""
    s = df.get_column(col).cast(pl.Float64).drop_nulls()
    s = s.filter(s.is_not_nan())
    return s.to_numpy()


def basic_stats(df, kinds):
    """One parallel select with every per-column aggregate."""
    exprs = []
    for c, k in kinds.items():
        col = pl.col(c)
        exprs += [
            col.count().alias(f"{c}\0count"),
            col.null_count().alias(f"{c}\0nulls"),
        ]
        try:
            # approx_n_unique is not defined for every dtype (e.g. nested).
            df.head(1).select(col.approx_n_unique())
            exprs.append(col.approx_n_unique().alias(f"{c}\0approx_distinct"))
        except Exception:
            pass
        if k == "numeric":
            x = col.cast(pl.Float64)
            x = x.filter(x.is_not_null() & x.is_not_nan())
            exprs += [
                col.cast(pl.Float64).is_nan().sum().alias(f"{c}\0nan"),
                x.min().alias(f"{c}\0min"),
                x.max().alias(f"{c}\0max"),
                x.mean().alias(f"{c}\0mean"),
                x.std().alias(f"{c}\0std"),
            ]
            exprs += [
                x.quantile(q, interpolation="linear").alias(f"{c}\0q{q}")
                for q in QUANTILES
            ]
    row = df.lazy().select(exprs).collect().row(0, named=True)
    out = {c: {"kind": k} for c, k in kinds.items()}
    for key, v in row.items():
        c, stat = key.split("\0")
        if stat.startswith("q"):
            out[c].setdefault("quantiles", {})[stat[1:]] = clean(v)
        else:
            out[c][stat] = clean(v)
    return out


def category_counts(df, col):
    """{category: count} over non-null values, as strings."""
    vc = (
        df.lazy()
        .select(pl.col(col).cast(pl.String).alias("v"))
        .drop_nulls()
        .group_by("v")
        .agg(pl.len().alias("n"))
        .collect()
    )
    return dict(zip(vc.get_column("v").to_list(), vc.get_column("n").to_list()))


def histogram(df, col, lo, hi):
    counts = [0] * BINS
    if lo is None or hi is None:
        return counts
    x = pl.col(col).cast(pl.Float64)
    x = x.filter(x.is_not_null() & x.is_not_nan())
    if hi > lo:
        idx = ((x - lo) / (hi - lo) * BINS).floor().cast(pl.Int64).clip(0, BINS - 1)
    else:
        idx = (x * 0).cast(pl.Int64)
    vc = (
        df.lazy()
        .select(idx.alias("b"))
        .group_by("b")
        .agg(pl.len().alias("n"))
        .collect()
    )
    for b, n in zip(vc.get_column("b").to_list(), vc.get_column("n").to_list()):
        counts[b] = n
    return counts


def profile(ref, cur):
    kinds_ref = {c: kind(t) for c, t in ref.schema.items()}
    kinds_cur = {c: kind(t) for c, t in cur.schema.items()}
    rep = {
        "reference": basic_stats(ref, kinds_ref),
        "current": basic_stats(cur, kinds_cur),
        "drift": {},
    }
    cats = {}
    for side, df, kinds in (
        ("reference", ref, kinds_ref),
        ("current", cur, kinds_cur),
    ):
        for c, k in kinds.items():
            if k == "categorical":
                counts = category_counts(df, c)
                cats[(side, c)] = counts
                top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_K]
                rep[side][c]["top"] = [[v, n] for v, n in top]

    # Histograms over the combined range of both files.
    for c in set(kinds_ref) | set(kinds_cur):
        sides = [
            (s, df)
            for s, df, kinds in (
                ("reference", ref, kinds_ref),
                ("current", cur, kinds_cur),
            )
            if kinds.get(c) == "numeric"
        ]
        los = [rep[s][c]["min"] for s, _ in sides if rep[s][c]["min"] is not None]
        his = [rep[s][c]["max"] for s, _ in sides if rep[s][c]["max"] is not None]
        lo = min(los) if los else None
        hi = max(his) if his else None
        for s, df in sides:
            rep[s][c]["histogram"] = {"lo": lo, "hi": hi, "counts": histogram(df, c, lo, hi)}

    for c in kinds_ref:
        kr, kc = kinds_ref[c], kinds_cur.get(c)
        if kr == "numeric" and kc == "numeric":
            a = numeric_values(ref, c)
            b = numeric_values(cur, c)
            if len(a) == 0 or len(b) == 0:
                rep["drift"][c] = {"metric": "wasserstein/std", "value": None}
                continue
            w = stats.wasserstein_distance(a, b)
            sd = float(np.std(a))
            rep["drift"][c] = {
                "metric": "wasserstein/std",
                "wasserstein": clean(w),
                "ref_std": clean(sd),
                "value": clean(w / sd) if sd > 0 else None,
            }
        elif kr == "categorical" and kc == "categorical":
            cr, cc = cats[("reference", c)], cats[("current", c)]
            keys = sorted(set(cr) | set(cc))
            p = np.array([cr.get(k, 0) for k in keys], dtype=np.float64)
            q = np.array([cc.get(k, 0) for k in keys], dtype=np.float64)
            v = distance.jensenshannon(p, q) if p.sum() > 0 and q.sum() > 0 else None
            rep["drift"][c] = {"metric": "jensenshannon", "value": clean(v)}
    return rep


def print_text(rep):
    for side in ("reference", "current"):
        print(f"== {side}")
        for c, s in rep[side].items():
            line = (
                f"  {c} [{s['kind']}] count={s['count']} nulls={s['nulls']}"
                f" approx_distinct={s.get('approx_distinct')}"
            )
            if s["kind"] == "numeric":
                line += (
                    f" min={s['min']} max={s['max']} mean={s['mean']}"
                    f" std={s['std']} p50={s['quantiles']['0.5']}"
                )
            elif s["kind"] == "categorical":
                line += f" top={s['top'][:3]}"
            print(line)
    print("== drift")
    for c, d in rep["drift"].items():
        print(f"  {c} {d['metric']}={d['value']}")


def main(argv):
    args = [a for a in argv if a != "--json"]
    as_json = len(args) != len(argv)
    if len(args) != 2:
        print("usage: polars_baseline.py REFERENCE.parquet CURRENT.parquet [--json]",
              file=sys.stderr)
        return 2
    ref = pl.read_parquet(args[0])
    cur = pl.read_parquet(args[1])
    rep = profile(ref, cur)
    if as_json:
        print(json.dumps(rep, allow_nan=False, separators=(",", ":")))
    else:
        print_text(rep)

    wall = time.perf_counter() - _T0
    me = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime
    rss_kib = max(me.ru_maxrss, ch.ru_maxrss)
    print(json.dumps({
        "tool": f"polars {pl.__version__}",
        "rows_ref": ref.height,
        "rows_cur": cur.height,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "peak_rss_mb": round(rss_kib / 1024, 1),
    }))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
