#!/usr/bin/env python3
"""REST benchmark for MLflow-compatible tracking servers (mlsec, mlflow server, ...).

Runs the same workload over `/api/2.0/mlflow/...` against any server and prints a readable
table followed by a JSON summary (also written to --json-out if given). Needs Python 3.8+ and
`requests`; nothing else.

Workloads (select with --only single,batch,search):

  single  POST runs/log-metric, one metric per call, with 1 thread and with --threads threads;
          each thread has its own requests.Session (keep-alive), its own metric key and
          increasing steps. Stops after --metric-calls calls or --max-seconds, whichever first.
  batch   POST runs/log-batch with 1,000 metrics per call (keys m0..m9 x 100 steps), with
          1 thread and with --threads threads (one run per thread). Stops after --batch-calls
          calls or --max-seconds.
  search  Seeds --search-runs runs into a fresh experiment (metric acc, param lr, tag team,
          status FINISHED; deterministic from seed 42), then times POST runs/search with two
          filters (3 warm-ups, --search-iters timed calls) and checks the results against the
          values expected from the seed.

Every response must be HTTP 200; the first failure stops the workload and the program exits 1.

Seeding (--seed-mode):
  rest           concurrent threads: runs/create, runs/log-batch (metric+param+tag), runs/update.
  mlflow-sqlite  the experiment is created over REST, then the runs are inserted straight into
                 the SQLite database of the mlflow server (--mlflow-db) with executemany in one
                 transaction. The columns of runs/metrics/latest_metrics/params/tags are read
                 with PRAGMA table_info, so extra columns with defaults or NULLs are fine; an
                 unknown NOT NULL column without default stops the seeding with its name.

Data set (run i = 0..N-1, one random.Random(42) stream, three draws per run, in this order):
  acc  = r.random()                         (metric, step 0, timestamp = start_time)
  lr   = ['0.1', '0.01', '0.001'][int(r.random() * 3)]       (param)
  team = ['a', 'b', 'c', 'd'][int(r.random() * 4)]           (tag)
  start_time = 1_700_000_000_000 + 1000 * i, end_time = start_time + 500, run name run-%07d
"""

import argparse
import json
import math
import os
import platform
import random
import sqlite3
import sys
import threading
import time
import uuid

import requests

API = "/api/2.0/mlflow"
LRS = ["0.1", "0.01", "0.001"]
TEAMS = ["a", "b", "c", "d"]
SEED = 42
START_BASE = 1_700_000_000_000
BATCH_KEYS = 10
BATCH_STEPS = 100  # 10 keys x 100 steps = 1,000 metrics per log-batch call (MLflow's maximum)
SEARCH_ACC = {
    "name": "acc>0.9 & lr=0.01",
    "filter": "metrics.acc > 0.9 and params.lr = '0.01'",
    "order_by": ["metrics.acc DESC"],
}
SEARCH_TEAM = {
    "name": "team=b & FINISHED",
    "filter": "tags.team = 'b' and attributes.status = 'FINISHED'",
    "order_by": ["attributes.start_time DESC"],
}


class BenchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def now_ms():
    return int(time.time() * 1000)


def pct(sorted_vals, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return None
    k = max(1, math.ceil(p / 100.0 * len(sorted_vals)))
    return sorted_vals[k - 1]


def ms(v):
    return None if v is None else round(v * 1000.0, 3)


class _RawResponse:
    def __init__(self, status, body):
        self.status_code = status
        self.content = body
        self.text = body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content) if self.content else {}


class RawSession:
    """A keep-alive HTTP/1.1 connection on http.client: a fraction of the client CPU of
    requests, so on a small machine the server, not the client, is what is measured."""

    def __init__(self, headers):
        self.headers = dict(headers)
        self.conn = None

    def _request(self, method, url, body, timeout):
        import http.client
        import urllib.parse
        u = urllib.parse.urlsplit(url)
        if self.conn is None:
            self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        path = u.path + ("?" + u.query if u.query else "")
        data = body.encode() if isinstance(body, str) else body
        try:
            self.conn.request(method, path, body=data, headers=self.headers)
            r = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
            self.conn.request(method, path, body=data, headers=self.headers)
            r = self.conn.getresponse()
        return _RawResponse(r.status, r.read())

    def post(self, url, data=None, timeout=None):
        return self._request("POST", url, data or "", timeout)

    def get(self, url, params=None, timeout=None):
        import urllib.parse
        if params:
            url = url + "?" + urllib.parse.urlencode(params, doseq=True)
        return self._request("GET", url, None, timeout)


class Client:
    raw = False

    def __init__(self, url, token, timeout):
        self.base = url.rstrip("/") + API
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            self.headers["Authorization"] = "Bearer " + token
        self.timeout = timeout

    def session(self):
        if self.raw:
            return RawSession(self.headers)
        s = requests.Session()
        s.headers.update(self.headers)
        return s

    def post(self, session, path, body):
        """POST and return (status, response); the body is read before returning."""
        r = session.post(self.base + path, data=json.dumps(body), timeout=self.timeout)
        return r.status_code, r

    def call(self, session, path, body=None, method="POST", params=None):
        """A setup/verification call that must succeed; returns the decoded JSON."""
        if method == "POST":
            r = session.post(self.base + path, data=json.dumps(body or {}), timeout=self.timeout)
        else:
            r = session.get(self.base + path, params=params, timeout=self.timeout)
        if r.status_code != 200:
            raise BenchError("%s %s -> HTTP %d: %s" % (method, path, r.status_code, r.text[:500]))
        return r.json() if r.content else {}

    def create_experiment(self, session, name):
        return str(self.call(session, "/experiments/create", {"name": name})["experiment_id"])

    def create_run(self, session, experiment_id, start_time=None, run_name=None):
        body = {"experiment_id": experiment_id, "start_time": start_time or now_ms()}
        if run_name:
            body["run_name"] = run_name
        info = self.call(session, "/runs/create", body)["run"]["info"]
        return info.get("run_id") or info["run_uuid"]


# --------------------------------------------------------------------------- load driver


def drive(n_threads, total_calls, max_seconds, make_worker):
    """Run n_threads workers that claim call slots until total_calls or max_seconds.

    make_worker(tid) returns (setup, do_call): setup() runs before the start barrier and returns
    per-thread state; do_call(state, k) performs call number k of this thread and returns
    (ok, error_text). Returns a dict with elapsed time, latencies and per-thread counts.
    """
    lock = threading.Lock()
    state = {"issued": 0, "failures": 0, "errors": [], "stopped_by": "calls", "abort": False}
    lat = [[] for _ in range(n_threads)]
    per_thread = [0] * n_threads
    barrier = threading.Barrier(n_threads + 1)
    deadline = [None]
    setup_errors = []

    def run(tid):
        setup, do_call = make_worker(tid)
        try:
            st = setup()
        except Exception as e:  # noqa: BLE001 - reported below
            setup_errors.append(repr(e))
            st = None
        barrier.wait()
        if st is None:
            return
        my = lat[tid]
        k = 0
        while True:
            with lock:
                if state["abort"] or state["issued"] >= total_calls:
                    break
                if time.perf_counter() >= deadline[0]:
                    state["stopped_by"] = "time"
                    break
                state["issued"] += 1
            t0 = time.perf_counter()
            try:
                ok, err = do_call(st, k)
            except Exception as e:  # noqa: BLE001 - connection errors count as failures
                ok, err = False, repr(e)
            my.append(time.perf_counter() - t0)
            k += 1
            if not ok:
                with lock:
                    state["failures"] += 1
                    if len(state["errors"]) < 5:
                        state["errors"].append(err)
                    state["abort"] = True
                break
            per_thread[tid] = k

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n_threads)]
    for t in threads:
        t.start()
    deadline[0] = math.inf
    barrier.wait()  # all sessions/runs are set up; start the clock
    t_start = time.perf_counter()
    deadline[0] = t_start + max_seconds
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t_start
    if setup_errors:
        raise BenchError("worker setup failed: %s" % setup_errors[0])
    all_lat = sorted(x for l in lat for x in l)
    return {
        "elapsed": elapsed,
        "latencies": all_lat,
        "per_thread": per_thread,
        "done": sum(per_thread),
        "failures": state["failures"],
        "errors": state["errors"],
        "stopped_by": "failure" if state["failures"] else state["stopped_by"],
    }


def summarise(name, n_threads, res, items_per_call, item_name):
    lat = res["latencies"]
    done = res["done"]
    el = res["elapsed"]
    row = {
        "workload": name,
        "threads": n_threads,
        "calls": done,
        "seconds": round(el, 3),
        "calls_per_s": round(done / el, 1) if el > 0 else None,
        item_name + "_per_s": round(done * items_per_call / el, 1) if el > 0 else None,
        "p50_ms": ms(pct(lat, 50)),
        "p99_ms": ms(pct(lat, 99)),
        "max_ms": ms(lat[-1]) if lat else None,
        "failures": res["failures"],
        "stopped_by": res["stopped_by"],
    }
    if res["errors"]:
        row["errors"] = res["errors"]
    return row


# --------------------------------------------------------------------------- workloads


def latest_metrics(client, session, run_id):
    run = client.call(session, "/runs/get", method="GET", params={"run_id": run_id})["run"]
    return {m["key"]: m for m in run.get("data", {}).get("metrics", [])}


def bench_single(client, args, n_threads, tag):
    s = client.session()
    exp = client.create_experiment(s, "rest-bench-log-metric-%s-t%d" % (tag, n_threads))
    run_id = client.create_run(s, exp)
    ts0 = now_ms()

    def make_worker(tid):
        key = "loss_t%d" % tid

        def setup():
            return client.session()

        def do_call(sess, k):
            body = {"run_id": run_id, "key": key, "value": 1.0 / (k + 1),
                    "timestamp": ts0 + k, "step": k}
            code, r = client.post(sess, "/runs/log-metric", body)
            return code == 200, (None if code == 200 else "HTTP %d: %s" % (code, r.text[:300]))

        return setup, do_call

    log("  log-metric, %d thread(s) ..." % n_threads)
    res = drive(n_threads, args.metric_calls, args.max_seconds, make_worker)
    row = summarise("log-metric", n_threads, res, 1, "metrics")
    if res["failures"] == 0:
        got = latest_metrics(client, s, run_id)
        bad = []
        for tid, n in enumerate(res["per_thread"]):
            key = "loss_t%d" % tid
            if n == 0:
                continue
            m = got.get(key)
            if m is None or int(m["step"]) != n - 1:
                bad.append("%s: expected latest step %d, got %s" % (key, n - 1, m))
        row["verified"] = not bad
        if bad:
            row["verify_errors"] = bad[:5]
    return row


def bench_batch(client, args, n_threads, tag):
    s = client.session()
    exp = client.create_experiment(s, "rest-bench-log-batch-%s-t%d" % (tag, n_threads))
    run_ids = [client.create_run(s, exp) for _ in range(n_threads)]
    ts0 = now_ms()

    def make_worker(tid):
        run_id = run_ids[tid]

        def setup():
            return client.session()

        def do_call(sess, k):
            metrics = []
            for key in range(BATCH_KEYS):
                name = "m%d" % key
                for j in range(BATCH_STEPS):
                    step = k * BATCH_STEPS + j
                    metrics.append({"key": name, "value": step * 0.5 + key,
                                    "timestamp": ts0 + step, "step": step})
            code, r = client.post(sess, "/runs/log-batch", {"run_id": run_id, "metrics": metrics})
            return code == 200, (None if code == 200 else "HTTP %d: %s" % (code, r.text[:300]))

        return setup, do_call

    log("  log-batch, %d thread(s) ..." % n_threads)
    res = drive(n_threads, args.batch_calls, args.max_seconds, make_worker)
    row = summarise("log-batch", n_threads, res, BATCH_KEYS * BATCH_STEPS, "metrics")
    if res["failures"] == 0:
        bad = []
        for tid, n in enumerate(res["per_thread"]):
            if n == 0:
                continue
            got = latest_metrics(client, s, run_ids[tid])
            want = n * BATCH_STEPS - 1
            for key in ("m0", "m%d" % (BATCH_KEYS - 1)):
                m = got.get(key)
                if m is None or int(m["step"]) != want:
                    bad.append("thread %d %s: expected latest step %d, got %s" % (tid, key, want, m))
        row["verified"] = not bad
        if bad:
            row["verify_errors"] = bad[:5]
    return row


def warm_up(client, args, tag):
    """Untimed calls so that lazy imports, connection pools and caches are ready."""
    s = client.session()
    exp = client.create_experiment(s, "rest-bench-warmup-%s" % tag)
    run_id = client.create_run(s, exp)
    ts0 = now_ms()
    for k in range(args.warmup):
        client.call(s, "/runs/log-metric", {"run_id": run_id, "key": "warm", "value": float(k),
                                           "timestamp": ts0 + k, "step": k})
    for k in range(2):
        client.call(s, "/runs/log-batch", {"run_id": run_id, "metrics": [
            {"key": "w%d" % (j % 10), "value": float(j), "timestamp": ts0, "step": k * 100 + j // 10}
            for j in range(BATCH_KEYS * BATCH_STEPS)]})
    client.call(s, "/runs/search", {"experiment_ids": [exp], "filter": SEARCH_ACC["filter"],
                                    "max_results": 100, "order_by": SEARCH_ACC["order_by"]})


# --------------------------------------------------------------------------- search data


def dataset(n):
    r = random.Random(SEED)
    out = []
    for i in range(n):
        acc = r.random()
        lr = LRS[int(r.random() * 3)]
        team = TEAMS[int(r.random() * 4)]
        out.append((acc, lr, team))
    return out


def start_time(i):
    return START_BASE + 1000 * i


def seed_rest(client, args, exp_id, data):
    n = len(data)
    run_ids = [None] * n
    lock = threading.Lock()
    nxt = [0]
    errors = []
    progress = [0]
    step = max(1, n // 10)

    def worker():
        s = client.session()
        while True:
            with lock:
                if errors or nxt[0] >= n:
                    return
                i = nxt[0]
                nxt[0] += 1
            acc, lr, team = data[i]
            st = start_time(i)
            try:
                rid = client.create_run(s, exp_id, st, "run-%07d" % i)
                client.call(s, "/runs/log-batch", {
                    "run_id": rid,
                    "metrics": [{"key": "acc", "value": acc, "timestamp": st, "step": 0}],
                    "params": [{"key": "lr", "value": lr}],
                    "tags": [{"key": "team", "value": team}],
                })
                client.call(s, "/runs/update",
                            {"run_id": rid, "status": "FINISHED", "end_time": st + 500})
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append("run %d: %s" % (i, e))
                return
            run_ids[i] = rid
            with lock:
                progress[0] += 1
                if progress[0] % step == 0:
                    log("    seeded %d / %d" % (progress[0], n))

    ts = [threading.Thread(target=worker, daemon=True) for _ in range(args.threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise BenchError("rest seeding failed: %s" % errors[0])
    return run_ids


def _table_columns(db, table):
    cols = db.execute("PRAGMA table_info(%s)" % table).fetchall()
    if not cols:
        raise BenchError("table %s not found in the --mlflow-db file (has mlflow server "
                         "initialised it?)" % table)
    # (cid, name, type, notnull, dflt_value, pk)
    return [(c[1], bool(c[3]), c[4] is not None, bool(c[5])) for c in cols]


def _plan_insert(db, table, known):
    """Columns to insert for `table`: the known ones that exist; fail on unknown required ones."""
    cols = _table_columns(db, table)
    use = []
    for name, notnull, has_default, pk in cols:
        if name in known:
            use.append(name)
        elif notnull and not has_default:
            raise BenchError("%s.%s is NOT NULL without a default and the seeder does not know "
                             "what to put there; extend _seed_sqlite" % (table, name))
    sql = "INSERT INTO %s (%s) VALUES (%s)" % (
        table, ", ".join('"%s"' % c for c in use), ", ".join("?" for _ in use))
    return use, sql


def seed_sqlite(client, args, exp_id, data):
    if not args.mlflow_db:
        raise BenchError("--seed-mode mlflow-sqlite needs --mlflow-db PATH")
    db = sqlite3.connect(args.mlflow_db, timeout=120, isolation_level=None)
    try:
        row = db.execute("SELECT artifact_location FROM experiments WHERE experiment_id = ?",
                         (int(exp_id),)).fetchone()
        if row is None:
            raise BenchError("experiment %s (created over REST) is not in %s: is --mlflow-db the "
                             "database of the server at --url?" % (exp_id, args.mlflow_db))
        art = (row[0] or "").rstrip("/")
        n = len(data)
        run_ids = [uuid.uuid4().hex for _ in range(n)]

        def run_row(i):
            st = start_time(i)
            return {"run_uuid": run_ids[i], "name": "run-%07d" % i, "source_type": "UNKNOWN",
                    "source_name": "", "entry_point_name": "", "user_id": "",
                    "status": "FINISHED", "start_time": st, "end_time": st + 500,
                    "source_version": "", "lifecycle_stage": "active",
                    "artifact_uri": "%s/%s/artifacts" % (art, run_ids[i]),
                    "experiment_id": int(exp_id), "deleted_time": None}

        def metric_row(i):
            st = start_time(i)
            return {"key": "acc", "value": data[i][0], "timestamp": st, "step": 0,
                    "is_nan": 0, "run_uuid": run_ids[i]}

        tables = {
            "runs": (run_row, list(run_row(0))),
            "metrics": (metric_row, list(metric_row(0))),
            "latest_metrics": (metric_row, list(metric_row(0))),
            "params": (lambda i: {"key": "lr", "value": data[i][1], "run_uuid": run_ids[i]},
                       ["key", "value", "run_uuid"]),
        }
        plans = {t: _plan_insert(db, t, known) for t, (_, known) in tables.items()}
        tag_cols, tag_sql = _plan_insert(db, "tags", ["key", "value", "run_uuid"])
        db.execute("BEGIN IMMEDIATE")
        try:
            for t, (make, _) in tables.items():
                cols, sql = plans[t]
                db.executemany(sql, ([make(i)[c] for c in cols] for i in range(n)))
            tags = []
            for i in range(n):
                tags.append({"key": "team", "value": data[i][2], "run_uuid": run_ids[i]})
                tags.append({"key": "mlflow.runName", "value": "run-%07d" % i,
                             "run_uuid": run_ids[i]})
            db.executemany(tag_sql, ([t[c] for c in tag_cols] for t in tags))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.close()
    return run_ids


# --------------------------------------------------------------------------- search bench


def _metric(run, key):
    for m in run.get("data", {}).get("metrics", []) or []:
        if m["key"] == key:
            return float(m["value"])
    return None


def _kv(run, kind, key):
    for p in run.get("data", {}).get(kind, []) or []:
        if p["key"] == key:
            return p["value"]
    return None


def _run_id(run):
    info = run["info"]
    return info.get("run_id") or info.get("run_uuid")


def check_acc(resp, data, run_ids):
    errs = []
    runs = resp.get("runs", []) or []
    exp = sorted(((d[0], i) for i, d in enumerate(data) if d[0] > 0.9 and d[1] == "0.01"),
                 reverse=True)
    want = exp[:100]
    if len(runs) != len(want):
        errs.append("expected %d runs, got %d" % (len(want), len(runs)))
    accs = []
    for r in runs:
        acc = _metric(r, "acc")
        lr = _kv(r, "params", "lr")
        if acc is None or not acc > 0.9:
            errs.append("run %s has acc %r" % (_run_id(r), acc))
        if lr != "0.01":
            errs.append("run %s has lr %r" % (_run_id(r), lr))
        accs.append(acc)
    if any(a is None for a in accs) or accs != sorted(accs, reverse=True):
        errs.append("not sorted by acc descending")
    wacc = [a for a, _ in want]
    if accs != wacc:
        k = next((j for j, (a, b) in enumerate(zip(accs, wacc)) if a != b), min(len(accs), len(wacc)))
        errs.append("acc values differ from the expected top %d at position %d (got %s, want %s)"
                    % (len(want), k, accs[k:k + 2], wacc[k:k + 2]))
    if run_ids is not None and [_run_id(r) for r in runs] != [run_ids[i] for _, i in want]:
        errs.append("run ids differ from the seeded runs")
    if len(exp) > 100 and not resp.get("next_page_token"):
        errs.append("no next_page_token although %d runs match" % len(exp))
    return errs, len(exp)


def check_team(resp, data, run_ids):
    errs = []
    runs = resp.get("runs", []) or []
    exp = [i for i in range(len(data) - 1, -1, -1) if data[i][2] == "b"]
    want = exp[:100]
    if len(runs) != len(want):
        errs.append("expected %d runs, got %d" % (len(want), len(runs)))
    sts = []
    for r in runs:
        if _kv(r, "tags", "team") != "b":
            errs.append("run %s has team %r" % (_run_id(r), _kv(r, "tags", "team")))
        if r["info"].get("status") != "FINISHED":
            errs.append("run %s has status %r" % (_run_id(r), r["info"].get("status")))
        sts.append(int(r["info"].get("start_time", -1)))
    if sts != sorted(sts, reverse=True):
        errs.append("not sorted by start_time descending")
    wst = [start_time(i) for i in want]
    if sts != wst:
        k = next((j for j, (a, b) in enumerate(zip(sts, wst)) if a != b), min(len(sts), len(wst)))
        errs.append("start times differ from the expected top %d at position %d (got %s, want %s)"
                    % (len(want), k, sts[k:k + 2], wst[k:k + 2]))
    if run_ids is not None and [_run_id(r) for r in runs] != [run_ids[i] for i in want]:
        errs.append("run ids differ from the seeded runs")
    if len(exp) > 100 and not resp.get("next_page_token"):
        errs.append("no next_page_token although %d runs match" % len(exp))
    return errs, len(exp)


def time_search(client, args, exp_id, spec, check, data, run_ids):
    s = client.session()
    body = {"experiment_ids": [exp_id], "filter": spec["filter"], "max_results": 100,
            "order_by": spec["order_by"]}
    log("  runs/search %s ..." % spec["name"])
    first = None
    first_ids = None
    lat = []
    mismatched = 0
    for k in range(3 + args.search_iters):
        t0 = time.perf_counter()
        code, r = client.post(s, "/runs/search", body)
        dt = time.perf_counter() - t0
        if code != 200:
            raise BenchError("runs/search (%s) -> HTTP %d: %s" % (spec["name"], code, r.text[:500]))
        resp = r.json()
        ids = [_run_id(x) for x in resp.get("runs", []) or []]
        if first is None:
            first, first_ids = resp, ids
        elif ids != first_ids:
            mismatched += 1
        if k >= 3:
            lat.append(dt)
            if len(lat) % 10 == 0:
                log("    %d / %d timed, last %.1f ms" % (len(lat), args.search_iters, dt * 1000))
    lat.sort()
    errs, matching = check(first, data, run_ids)
    if mismatched:
        errs.append("%d responses returned different runs from the first" % mismatched)
    row = {
        "workload": "runs/search " + spec["name"],
        "filter": spec["filter"],
        "order_by": spec["order_by"],
        "runs_in_experiment": len(data),
        "matching_runs": matching,
        "returned": len(first.get("runs", []) or []),
        "iterations": len(lat),
        "p50_ms": ms(pct(lat, 50)),
        "p95_ms": ms(pct(lat, 95)),
        "max_ms": ms(lat[-1]),
        "mean_ms": ms(sum(lat) / len(lat)),
        "verified": not errs,
    }
    if errs:
        row["verify_errors"] = errs[:8]
    return row


def bench_search(client, args, tag):
    n = args.search_runs
    data = dataset(n)
    s = client.session()
    seed_row = None
    run_ids = None
    if args.skip_seed:
        if not args.search_experiment:
            raise BenchError("--skip-seed needs --search-experiment NAME (printed by a seeding run)")
        name = args.search_experiment
        exp = client.call(s, "/experiments/get-by-name", method="GET",
                          params={"experiment_name": name})["experiment"]
        exp_id = str(exp["experiment_id"])
        log("  using experiment %s (%s), assuming it holds the %d seeded runs" % (name, exp_id, n))
    else:
        name = args.search_experiment or "rest-bench-search-%d-%s" % (n, tag)
        exp_id = client.create_experiment(s, name)
        log("  seeding %d runs into experiment %s (%s), mode %s ..." % (n, name, exp_id,
                                                                        args.seed_mode))
        t0 = time.perf_counter()
        if args.seed_mode == "rest":
            run_ids = seed_rest(client, args, exp_id, data)
        else:
            run_ids = seed_sqlite(client, args, exp_id, data)
        el = time.perf_counter() - t0
        seed_row = {"workload": "seed", "mode": args.seed_mode, "runs": n,
                    "seconds": round(el, 3), "runs_per_s": round(n / el, 1),
                    "threads": args.threads if args.seed_mode == "rest" else 1}
        log("  seeded in %.2f s" % el)
    rows = [time_search(client, args, exp_id, SEARCH_ACC, check_acc, data, run_ids),
            time_search(client, args, exp_id, SEARCH_TEAM, check_team, data, run_ids)]
    return {"experiment": name, "experiment_id": exp_id, "seed": seed_row, "queries": rows}


# --------------------------------------------------------------------------- output


def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "{:,.{d}f}".format(v, d=digits)
    if isinstance(v, int):
        return "{:,}".format(v)
    return str(v)


def print_table(summary):
    out = []
    out.append("REST benchmark: %s  (%s, client threads %d, %s, loadavg %s -> %s)" % (
        summary["label"], summary["url"], summary["threads"], summary["started"],
        summary.get("loadavg_start"), summary.get("loadavg_end")))
    rows = summary.get("single", []) + summary.get("batch", [])
    if rows:
        hdr = ("workload", "thr", "calls", "secs", "calls/s", "metrics/s", "p50 ms", "p99 ms",
               "fail", "stop", "ok")
        table = [hdr]
        for r in rows:
            table.append((r["workload"], fmt(r["threads"]), fmt(r["calls"]), fmt(r["seconds"], 2),
                          fmt(r["calls_per_s"]), fmt(r["metrics_per_s"], 0), fmt(r["p50_ms"], 2),
                          fmt(r["p99_ms"], 2), fmt(r["failures"]), r["stopped_by"],
                          {True: "yes", False: "NO"}.get(r.get("verified"), "-")))
        out.extend(_render(table))
    sr = summary.get("search")
    if sr:
        out.append("")
        if sr["seed"]:
            sd = sr["seed"]
            out.append("seed: %s runs via %s in %s s (%s runs/s)" % (
                fmt(sd["runs"]), sd["mode"], fmt(sd["seconds"], 2), fmt(sd["runs_per_s"], 0)))
        table = [("query (experiment %s)" % sr["experiment_id"], "runs", "match", "returned",
                  "iters", "p50 ms", "p95 ms", "max ms", "ok")]
        for q in sr["queries"]:
            table.append((q["workload"], fmt(q["runs_in_experiment"]), fmt(q["matching_runs"]),
                          fmt(q["returned"]), fmt(q["iterations"]), fmt(q["p50_ms"], 1),
                          fmt(q["p95_ms"], 1), fmt(q["max_ms"], 1),
                          "yes" if q["verified"] else "NO"))
        out.extend(_render(table))
        for q in sr["queries"]:
            for e in q.get("verify_errors", []):
                out.append("  VERIFY FAILED (%s): %s" % (q["workload"], e))
    for r in rows:
        for e in r.get("errors", []) + r.get("verify_errors", []):
            out.append("  ERROR (%s, %d thr): %s" % (r["workload"], r["threads"], e))
    print("\n".join(out))


def _render(table):
    widths = [max(len(str(row[c])) for row in table) for c in range(len(table[0]))]
    lines = []
    for n, row in enumerate(table):
        cells = [str(v).ljust(widths[c]) if c == 0 else str(v).rjust(widths[c])
                 for c, v in enumerate(row)]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:5000")
    ap.add_argument("--token", help="sent as Authorization: Bearer TOKEN")
    ap.add_argument("--label", default="server", help="name of the server in the output")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--metric-calls", type=int, default=20000)
    ap.add_argument("--batch-calls", type=int, default=200)
    ap.add_argument("--search-runs", type=int, default=100000)
    ap.add_argument("--search-iters", type=int, default=50, help="timed runs/search calls per query")
    ap.add_argument("--max-seconds", type=float, default=60.0,
                    help="stop each log-metric / log-batch row after this long")
    ap.add_argument("--warmup", type=int, default=50,
                    help="untimed log-metric calls (plus 2 log-batch, 1 search) before measuring")
    ap.add_argument("--seed-mode", choices=["rest", "mlflow-sqlite"], default="rest")
    ap.add_argument("--mlflow-db", help="SQLite file of the mlflow server (mlflow-sqlite seeding)")
    ap.add_argument("--skip-seed", action="store_true",
                    help="reuse the experiment named by --search-experiment (seeded earlier)")
    ap.add_argument("--search-experiment", help="experiment name for the search workload")
    ap.add_argument("--only", default="single,batch,search",
                    help="comma-separated subset of single,batch,search")
    ap.add_argument("--timeout", type=float, default=300.0, help="per-request timeout, seconds")
    ap.add_argument("--json-out", help="also write the JSON summary to this file")
    ap.add_argument("--client", choices=["requests", "raw"], default="requests",
                    help="HTTP client: requests (what MLflow's client uses) or raw http.client "
                         "keep-alive (less client CPU on small machines)")
    args = ap.parse_args()

    only = {w.strip() for w in args.only.split(",") if w.strip()}
    unknown = only - {"single", "batch", "search"}
    if unknown:
        ap.error("unknown workload(s) in --only: %s" % ", ".join(sorted(unknown)))

    client = Client(args.url, args.token, args.timeout)
    client.raw = args.client == "raw"
    tag = "%s-%d-%s" % (args.label, int(time.time()), uuid.uuid4().hex[:6])
    summary = {
        "label": args.label,
        "url": args.url,
        "threads": args.threads,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "client": {"python": platform.python_version(), "requests": requests.__version__,
                   "cpus": os.cpu_count(), "host": platform.node()},
        "params": {k: getattr(args, k) for k in ("metric_calls", "batch_calls", "search_runs",
                                                 "search_iters", "max_seconds", "seed_mode")},
    }
    summary["loadavg_start"] = _loadavg()
    status = 0
    try:
        if args.warmup > 0 and only & {"single", "batch"}:
            log("warm-up (%d log-metric calls)" % args.warmup)
            warm_up(client, args, tag)
        thread_counts = [1] if args.threads == 1 else [1, args.threads]
        if "single" in only:
            log("single log-metric (%d calls, max %.0f s per row)" % (args.metric_calls,
                                                                       args.max_seconds))
            summary["single"] = []
            for t in thread_counts:
                row = bench_single(client, args, t, tag)
                summary["single"].append(row)
                if row["failures"]:
                    raise BenchError("log-metric with %d threads: %d failure(s): %s"
                                     % (t, row["failures"], row.get("errors")))
        if "batch" in only:
            log("log-batch (%d calls of %d metrics)" % (args.batch_calls, BATCH_KEYS * BATCH_STEPS))
            summary["batch"] = []
            for t in thread_counts:
                row = bench_batch(client, args, t, tag)
                summary["batch"].append(row)
                if row["failures"]:
                    raise BenchError("log-batch with %d threads: %d failure(s): %s"
                                     % (t, row["failures"], row.get("errors")))
        if "search" in only:
            log("runs/search over %d runs" % args.search_runs)
            summary["search"] = bench_search(client, args, tag)
    except (BenchError, requests.RequestException) as e:
        summary["error"] = str(e)
        status = 1
    summary["loadavg_end"] = _loadavg()
    verified = [r.get("verified") for r in summary.get("single", []) + summary.get("batch", [])]
    verified += [q["verified"] for q in (summary.get("search") or {}).get("queries", [])]
    summary["all_verified"] = all(v is not False for v in verified)
    if not summary["all_verified"] and status == 0:
        status = 2
    print_table(summary)
    if "error" in summary:
        print("ABORTED: %s" % summary["error"])
    print()
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(text + "\n")
    sys.exit(status)


if __name__ == "__main__":
    main()
