#!/usr/bin/env python3
"""Interop test: what a training job does with the stock `mlflow` client.

Runs against any MLflow-compatible tracking server (real `mlflow server` is the
reference; mlsec must behave the same). Asserts every result, prints
`OK <n> checks` on success, or `FAIL [<step>] <message>` and exits 1.

Environment:
  MLFLOW_TRACKING_URI      server to talk to (required), e.g. http://127.0.0.1:5000
  MLFLOW_TRACKING_TOKEN    sent by the client as `Authorization: Bearer <token>`
  MLSEC_DATASET_SOURCE     URI of the logged dataset (default below); stored as
                           source_type s3 {"uri": ...}, http {"url": ...} or local {"uri": ...}
  MLSEC_DATASET_DIGEST     digest of the logged dataset (default: derived from rows)
  MLSEC_EXPECT_QUARANTINE  =1: also log a malicious pickle as a model, register it and
                           assert that setting an alias on that version FAILS
                           (mlsec only; real MLflow lets it through)
  MLSEC_REQUIRE_PYFUNC     =1: fail instead of falling back when `mlflow.pyfunc`
                           cannot be imported (it needs numpy + pandas; mlflow-skinny
                           alone does not have them)
  MLSEC_PYFUNC_PICKLE      =1: (with pyfunc) log the PythonModel as a cloudpickled instance
                           (python_model.pkl, what most training code does) instead of
                           as model-from-code; a pickle scanner sees cloudpickle globals
  MLSEC_DATASET_VIA_PANDAS =1: (with pandas) log the dataset with
                           mlflow.log_input(mlflow.data.from_pandas(...)) instead of the
                           Dataset entity + MlflowClient().log_inputs path
  MLSEC_TEST_SUFFIX        suffix for experiment / model names (default: pid + time)

Without pandas the model is logged through the low-level logged-model client calls
(create_logged_model / log_model_artifacts / finalize_logged_model), which send the
same REST requests that `mlflow.pyfunc.log_model` sends, and the dataset is built
from `mlflow.entities.Dataset` instead of `mlflow.data.from_pandas`.
"""

import hashlib
import json
import os
import pickle
import shutil
import sys
import tempfile
import time
import traceback

import mlflow
import mlflow.artifacts
from mlflow import MlflowClient
from mlflow.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    Metric,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)
from mlflow.exceptions import MlflowException

try:  # needs numpy + pandas
    import mlflow.pyfunc

    HAVE_PYFUNC = True
    PYFUNC_IMPORT_ERROR = None
except ImportError as e:  # pragma: no cover - depends on the environment
    HAVE_PYFUNC = False
    PYFUNC_IMPORT_ERROR = e

try:
    import pandas  # noqa: F401

    HAVE_PANDAS = True
except ImportError:
    HAVE_PANDAS = False


# --------------------------------------------------------------------------- checks


class CheckFailed(Exception):
    pass


class Checker:
    def __init__(self):
        self.n = 0
        self.step = "setup"

    def check(self, cond, msg):
        self.n += 1
        if not cond:
            raise CheckFailed(msg)

    def eq(self, actual, expected, what):
        self.check(actual == expected, f"{what}: expected {expected!r}, got {actual!r}")

    def raises(self, fn, what, exc=MlflowException):
        try:
            fn()
        except exc as e:
            self.n += 1
            return e
        raise CheckFailed(f"{what}: expected {exc.__name__}, call succeeded")


C = Checker()

SUFFIX = os.environ.get("MLSEC_TEST_SUFFIX") or f"{os.getpid()}-{int(time.time() * 1000)}"
EXPERIMENT_NAME = f"mlsec-interop-{SUFFIX}"
MODEL_NAME = f"mlsec-interop-model-{SUFFIX}"
DATASET_SOURCE = os.environ.get("MLSEC_DATASET_SOURCE", "s3://mlsec-interop/datasets/iris.csv")
EXPECT_QUARANTINE = os.environ.get("MLSEC_EXPECT_QUARANTINE") == "1"
REQUIRE_PYFUNC = os.environ.get("MLSEC_REQUIRE_PYFUNC") == "1"
PYFUNC_PICKLE = os.environ.get("MLSEC_PYFUNC_PICKLE") == "1"
DATASET_VIA_PANDAS = os.environ.get("MLSEC_DATASET_VIA_PANDAS") == "1"

T0 = 1_700_000_000_000  # fixed metric timestamps (ms) keep the run deterministic

ACC = [(0, 0.5), (1, 0.7), (2, 0.9)]  # (step, value) of metric `acc` on the main run
LOSS = [(0, 1.5), (1, 0.9), (2, 0.4)]
F1 = [(0, 0.8), (1, 0.85)]  # logged through log_batch

DATASET_ROWS = [
    {"x1": 5.1, "x2": 3.5, "label": 0},
    {"x1": 6.2, "x2": 2.9, "label": 1},
    {"x1": 7.7, "x2": 3.0, "label": 2},
]

FILE_TEXT = "hello from a training job\n"
DIR_FILES = {  # relative path -> bytes, logged with log_artifacts under `plots/`
    "summary.txt": b"accuracy=0.9\n",
    "weights.bin": bytes(range(256)) * 4,
    "nested/deep.json": b'{"deep": true}\n',
}
TEXT_ARTIFACT = ("notes/readme.md", "# run notes\nline two\n")
DICT_ARTIFACT = ("config/params.json", {"lr": 0.01, "layers": [64, 32], "name": "mlp"})

# The model's code: a tiny PythonModel subclass, logged as "model from code" (the
# model file is stored as source, so no pickle of user code ends up in the registry).
MODEL_CODE = '''\
import mlflow
from mlflow.pyfunc import PythonModel


class AddN(PythonModel):
    """Adds 10 to every input value."""

    def predict(self, context, model_input, params=None):
        if hasattr(model_input, "to_dict"):  # pandas DataFrame
            model_input = model_input["x"].tolist()
        return [v + 10 for v in model_input]


mlflow.models.set_model(AddN())
'''

STATE = {}  # values passed between steps


def client():
    return MlflowClient()


# --------------------------------------------------------------------------- steps


def step_server_reachable():
    uri = mlflow.get_tracking_uri()
    C.check(uri.startswith("http"), f"MLFLOW_TRACKING_URI must be an http(s) URL, got {uri!r}")
    # Unknown experiment name -> client maps RESOURCE_DOES_NOT_EXIST to None.
    C.eq(client().get_experiment_by_name(f"does-not-exist-{SUFFIX}"), None, "unknown experiment")


def step_set_experiment():
    C.eq(client().get_experiment_by_name(EXPERIMENT_NAME), None,
         f"experiment {EXPERIMENT_NAME} must not exist yet (pick another MLSEC_TEST_SUFFIX)")
    exp = mlflow.set_experiment(EXPERIMENT_NAME)
    C.eq(exp.name, EXPERIMENT_NAME, "experiment name")
    C.check(exp.experiment_id, "experiment has an id")
    C.eq(exp.lifecycle_stage, "active", "experiment lifecycle_stage")
    again = client().get_experiment(exp.experiment_id)
    C.eq(again.name, EXPERIMENT_NAME, "get_experiment name")
    by_name = client().get_experiment_by_name(EXPERIMENT_NAME)
    C.eq(by_name.experiment_id, exp.experiment_id, "get_experiment_by_name id")
    STATE["experiment_id"] = exp.experiment_id


def step_start_run():
    run = mlflow.start_run(run_name="train-main", tags={"team": "mlsec", "stage": "dev"})
    STATE["run_id"] = run.info.run_id
    C.eq(run.info.run_name, "train-main", "run name")
    C.eq(run.info.experiment_id, STATE["experiment_id"], "run experiment id")
    C.eq(run.info.status, "RUNNING", "new run status")
    C.eq(run.data.tags.get("team"), "mlsec", "start_run tag team")
    C.eq(run.data.tags.get("mlflow.runName"), "train-main", "mlflow.runName tag")


def step_log_params():
    mlflow.log_param("lr", "0.01")
    mlflow.log_params({"epochs": 3, "batch_size": 32, "optimizer": "adam"})
    params = client().get_run(STATE["run_id"]).data.params
    C.eq(params.get("lr"), "0.01", "param lr")
    C.eq(params.get("epochs"), "3", "param epochs (stringified)")
    C.eq(params.get("batch_size"), "32", "param batch_size")
    C.eq(params.get("optimizer"), "adam", "param optimizer")
    # Params are immutable: logging another value for the same key is an error.
    e = C.raises(lambda: mlflow.log_param("lr", "0.5"), "changing a logged param")
    C.eq(e.error_code, "INVALID_PARAMETER_VALUE", "error_code when changing a param")


def step_log_metrics():
    for (step, acc), (_, loss) in zip(ACC, LOSS):
        mlflow.log_metric("acc", acc, step=step, timestamp=T0 + step * 1000)
        mlflow.log_metric("loss", loss, step=step, timestamp=T0 + step * 1000)
    metrics = client().get_run(STATE["run_id"]).data.metrics
    C.eq(metrics.get("acc"), 0.9, "latest acc")
    C.eq(metrics.get("loss"), 0.4, "latest loss")


def step_log_batch():
    run_id = STATE["run_id"]
    client().log_batch(
        run_id,
        metrics=[Metric("f1", v, T0 + s * 1000, s) for s, v in F1],
        params=[Param("seed", "42"), Param("dropout", "0.1")],
        tags=[RunTag("batch", "yes")],
    )
    data = client().get_run(run_id).data
    C.eq(data.metrics.get("f1"), 0.85, "batch metric f1")
    C.eq(data.params.get("seed"), "42", "batch param seed")
    C.eq(data.params.get("dropout"), "0.1", "batch param dropout")
    C.eq(data.tags.get("batch"), "yes", "batch tag")


def step_set_tags():
    mlflow.set_tag("phase", "train")
    mlflow.set_tags({"owner": "ci", "purpose": "interop"})
    client().set_tag(STATE["run_id"], "temp", "x")
    client().delete_tag(STATE["run_id"], "temp")
    tags = client().get_run(STATE["run_id"]).data.tags
    C.eq(tags.get("phase"), "train", "tag phase")
    C.eq(tags.get("owner"), "ci", "tag owner")
    C.eq(tags.get("purpose"), "interop", "tag purpose")
    C.check("temp" not in tags, f"deleted tag still present: {tags.get('temp')!r}")


def step_nested_child_run():
    with mlflow.start_run(run_name="train-child", nested=True) as child:
        mlflow.log_param("lr", "0.01")
        mlflow.log_metric("acc", 0.3, step=0, timestamp=T0)
        mlflow.set_tag("team", "mlsec")
    STATE["child_run_id"] = child.info.run_id
    got = client().get_run(child.info.run_id)
    C.eq(got.data.tags.get("mlflow.parentRunId"), STATE["run_id"], "child mlflow.parentRunId")
    C.eq(got.info.status, "FINISHED", "child status after with-block")
    C.check(got.info.end_time is not None, "child end_time set")
    C.eq(mlflow.active_run().info.run_id, STATE["run_id"], "active run back to parent")


def step_sibling_run():
    # A second top-level run (different lr) so that searches have something to exclude.
    # Created through the client so the fluent active run stays the main run.
    c = client()
    run = c.create_run(
        STATE["experiment_id"], run_name="train-lr-0.1", tags={"team": "mlsec"}
    )
    rid = run.info.run_id
    c.log_param(rid, "lr", "0.1")
    c.log_metric(rid, "acc", 0.8, timestamp=T0, step=0)
    c.set_terminated(rid, "FINISHED")
    STATE["sibling_run_id"] = rid
    got = c.get_run(rid)
    C.eq(got.info.status, "FINISHED", "sibling status")
    C.eq(got.info.run_name, "train-lr-0.1", "sibling run name")


def _dataset_digest():
    if os.environ.get("MLSEC_DATASET_DIGEST"):
        return os.environ["MLSEC_DATASET_DIGEST"]
    blob = json.dumps(DATASET_ROWS, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:8]


def _dataset_source():
    """(source_type, source JSON) as mlflow.data's own source classes encode them."""
    if DATASET_SOURCE.startswith(("http://", "https://")):
        return "http", json.dumps({"url": DATASET_SOURCE})
    if DATASET_SOURCE.startswith("s3://"):
        return "s3", json.dumps({"uri": DATASET_SOURCE})
    return "local", json.dumps({"uri": DATASET_SOURCE})


def step_log_input():
    digest = _dataset_digest()
    source_type, source = _dataset_source()
    if HAVE_PANDAS and DATASET_VIA_PANDAS:
        import pandas as pd

        ds_obj = mlflow.data.from_pandas(pd.DataFrame(DATASET_ROWS), source=DATASET_SOURCE,
                                         name="iris-mini", targets="label", digest=digest)
        mlflow.log_input(ds_obj, context="training")
        schema = ds_obj._to_mlflow_entity().schema
    else:
        schema = json.dumps(
            {"mlflow_colspec": [
                {"type": "double", "name": "x1"},
                {"type": "double", "name": "x2"},
                {"type": "long", "name": "label"},
            ]}
        )
        profile = json.dumps({"num_rows": len(DATASET_ROWS),
                              "num_elements": 3 * len(DATASET_ROWS)})
        dataset = Dataset(name="iris-mini", digest=digest, source_type=source_type,
                          source=source, schema=schema, profile=profile)
        client().log_inputs(
            STATE["run_id"],
            datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])],
        )
    inputs = client().get_run(STATE["run_id"]).inputs
    C.eq(len(inputs.dataset_inputs), 1, "number of dataset inputs")
    ds = inputs.dataset_inputs[0].dataset
    C.eq(ds.name, "iris-mini", "dataset name")
    C.eq(ds.digest, digest, "dataset digest")
    C.eq(ds.source_type, source_type, "dataset source_type")
    C.eq(json.loads(ds.source), json.loads(source), "dataset source")
    C.eq(ds.schema, schema, "dataset schema")
    tags = {t.key: t.value for t in inputs.dataset_inputs[0].tags}
    C.eq(tags.get("mlflow.data.context"), "training", "dataset context tag")


def _write_dir(root, files):
    for rel, data in files.items():
        p = os.path.join(root, *rel.split("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)


def step_log_artifacts():
    tmp = STATE["tmp"]
    path = os.path.join(tmp, "hello.txt")
    with open(path, "w") as f:
        f.write(FILE_TEXT)
    mlflow.log_artifact(path)  # -> hello.txt
    mlflow.log_artifact(path, artifact_path="extra")  # -> extra/hello.txt
    d = os.path.join(tmp, "plots-src")
    _write_dir(d, DIR_FILES)
    mlflow.log_artifacts(d, artifact_path="plots")
    mlflow.log_text(TEXT_ARTIFACT[1], TEXT_ARTIFACT[0])
    mlflow.log_dict(DICT_ARTIFACT[1], DICT_ARTIFACT[0])
    run = client().get_run(STATE["run_id"])
    C.check(run.info.artifact_uri, "run has an artifact_uri")


def step_list_artifacts():
    c, rid = client(), STATE["run_id"]
    root = {(f.path, f.is_dir) for f in c.list_artifacts(rid)}
    for expected in [("hello.txt", False), ("extra", True), ("plots", True),
                     ("notes", True), ("config", True)]:
        C.check(expected in root, f"root listing lacks {expected}: {sorted(root)}")
    plots = {f.path: f for f in c.list_artifacts(rid, "plots")}
    C.eq(sorted(plots), ["plots/nested", "plots/summary.txt", "plots/weights.bin"], "plots listing")
    C.eq(plots["plots/weights.bin"].file_size, len(DIR_FILES["weights.bin"]), "weights.bin size")
    C.eq(plots["plots/nested"].is_dir, True, "plots/nested is a dir")
    nested = [f.path for f in c.list_artifacts(rid, "plots/nested")]
    C.eq(nested, ["plots/nested/deep.json"], "plots/nested listing")
    # mlflow.artifacts.list_artifacts with a runs:/ URI
    via_uri = [f.path for f in mlflow.artifacts.list_artifacts(f"runs:/{rid}/extra")]
    C.eq(via_uri, ["extra/hello.txt"], "list_artifacts(runs:/.../extra)")


def step_download_artifacts():
    rid, tmp = STATE["run_id"], STATE["tmp"]
    dst = os.path.join(tmp, "dl-file")
    local = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="hello.txt", dst_path=dst)
    with open(local) as f:
        C.eq(f.read(), FILE_TEXT, "downloaded hello.txt")
    dst = os.path.join(tmp, "dl-dir")
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"runs:/{rid}/plots", dst_path=dst)
    for rel, data in DIR_FILES.items():
        p = os.path.join(local, *rel.split("/"))
        C.check(os.path.isfile(p), f"downloaded dir lacks {rel}")
        with open(p, "rb") as f:
            C.eq(f.read(), data, f"bytes of downloaded plots/{rel}")
    text = mlflow.artifacts.load_text(f"runs:/{rid}/{TEXT_ARTIFACT[0]}")
    C.eq(text, TEXT_ARTIFACT[1], "load_text of log_text artifact")
    d = mlflow.artifacts.load_dict(f"runs:/{rid}/{DICT_ARTIFACT[0]}")
    C.eq(d, DICT_ARTIFACT[1], "load_dict of log_dict artifact")


def _model_dir_without_pyfunc(root):
    """A minimal pyfunc-from-code model directory, written by hand (no pandas needed)."""
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "model_code.py"), "w") as f:
        f.write(MODEL_CODE)
    with open(os.path.join(root, "MLmodel"), "w") as f:
        f.write(  # the same keys mlflow.pyfunc.log_model(python_model=<file>) writes
            "flavors:\n"
            "  python_function:\n"
            "    code: null\n"
            "    env:\n"
            "      virtualenv: python_env.yaml\n"
            "    loader_module: mlflow.pyfunc.loaders.code_model\n"
            "    model_code_path: model_code.py\n"
            "    python_version: 3.11.0\n"
            "    streamable: false\n"
            f"mlflow_version: {mlflow.__version__}\n"
        )
    with open(os.path.join(root, "requirements.txt"), "w") as f:
        f.write(f"mlflow-skinny=={mlflow.__version__}\n")
    with open(os.path.join(root, "python_env.yaml"), "w") as f:
        f.write("python: 3.11.0\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n")


def _pickled_model_instance():
    class AddN(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            if hasattr(model_input, "to_dict"):
                model_input = model_input["x"].tolist()
            return [v + 10 for v in model_input]

    return AddN()


def step_log_model():
    if not HAVE_PYFUNC and REQUIRE_PYFUNC:
        raise CheckFailed(f"mlflow.pyfunc cannot be imported: {PYFUNC_IMPORT_ERROR}")
    tmp = STATE["tmp"]
    if HAVE_PYFUNC:
        if PYFUNC_PICKLE:
            python_model = _pickled_model_instance()
        else:
            python_model = os.path.join(tmp, "model_code.py")
            with open(python_model, "w") as f:
                f.write(MODEL_CODE)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=python_model,
            registered_model_name=MODEL_NAME,
            pip_requirements=[f"mlflow-skinny=={mlflow.__version__}"],
        )
        model_id = info.model_id
        C.eq(str(info.registered_model_version), "1", "log_model registered version")
    else:
        print(f"note: mlflow.pyfunc unavailable ({PYFUNC_IMPORT_ERROR}); "
              "logging the model through the logged-model client calls")
        c = client()
        lm = c.create_logged_model(
            STATE["experiment_id"], name="model", source_run_id=STATE["run_id"]
        )
        model_id = lm.model_id
        d = os.path.join(tmp, "model-src")
        _model_dir_without_pyfunc(d)
        c.log_model_artifacts(model_id, d)
        c.finalize_logged_model(model_id, "READY")
        mv = mlflow.register_model(f"models:/{model_id}", MODEL_NAME)
        C.eq(mv.version, "1", "register_model version")
    STATE["model_id"] = model_id
    lm = client().get_logged_model(model_id)
    C.eq(lm.name, "model", "logged model name")
    C.eq(lm.source_run_id, STATE["run_id"], "logged model source run")
    C.eq(str(lm.status), "READY", "logged model status")
    files = {f.path for f in client().list_logged_model_artifacts(model_id)}
    C.check("MLmodel" in files, f"logged model artifacts lack MLmodel: {sorted(files)}")
    mv = client().get_model_version(MODEL_NAME, "1")
    C.eq(mv.status, "READY", "model version 1 status")
    C.eq(mv.run_id, STATE["run_id"], "model version 1 run_id")


def step_register_second_version():
    mv = mlflow.register_model(f"runs:/{STATE['run_id']}/model", MODEL_NAME)
    C.eq(str(mv.version), "2", "second version number")
    C.eq(mv.name, MODEL_NAME, "second version model name")
    got = client().get_model_version(MODEL_NAME, "2")
    C.eq(got.status, "READY", "version 2 status")
    C.eq(got.run_id, STATE["run_id"], "version 2 run_id")
    rm = client().get_registered_model(MODEL_NAME)
    versions = sorted(v.version for v in rm.latest_versions)
    C.check(versions, "registered model has latest_versions")


def step_alias():
    c = client()
    c.set_registered_model_alias(MODEL_NAME, "champion", "2")
    c.set_registered_model_alias(MODEL_NAME, "challenger", "1")
    mv = c.get_model_version_by_alias(MODEL_NAME, "champion")
    C.eq(mv.version, "2", "champion alias version")
    C.check("champion" in mv.aliases, f"aliases of v2: {mv.aliases}")
    rm = c.get_registered_model(MODEL_NAME)
    C.eq(rm.aliases, {"champion": "2", "challenger": "1"}, "registered model aliases")
    c.delete_registered_model_alias(MODEL_NAME, "challenger")
    C.eq(c.get_registered_model(MODEL_NAME).aliases, {"champion": "2"}, "aliases after delete")
    e = C.raises(lambda: c.get_model_version_by_alias(MODEL_NAME, "challenger"), "deleted alias")
    C.eq(e.error_code, "INVALID_PARAMETER_VALUE", "error_code for a missing alias")


def step_registry_tags_and_descriptions():
    c = client()
    c.set_registered_model_tag(MODEL_NAME, "task", "classification")
    c.set_registered_model_tag(MODEL_NAME, "tmp", "1")
    c.delete_registered_model_tag(MODEL_NAME, "tmp")
    c.set_model_version_tag(MODEL_NAME, "2", "validated", "true")
    c.update_registered_model(MODEL_NAME, description="interop test model")
    c.update_model_version(MODEL_NAME, "2", description="second version")
    rm = c.get_registered_model(MODEL_NAME)
    C.eq(rm.tags, {"task": "classification"}, "registered model tags")
    C.eq(rm.description, "interop test model", "registered model description")
    mv = c.get_model_version(MODEL_NAME, "2")
    C.eq(mv.tags, {"validated": "true"}, "model version tags")
    C.eq(mv.description, "second version", "model version description")


def step_load_model():
    if not HAVE_PYFUNC:
        # Without pandas, at least resolve models:/name@alias and fetch its files.
        dst = os.path.join(STATE["tmp"], "model-by-alias")
        local = mlflow.artifacts.download_artifacts(f"models:/{MODEL_NAME}@champion", dst_path=dst)
        C.check(os.path.isfile(os.path.join(local, "MLmodel")), "models:/@champion has MLmodel")
        with open(os.path.join(local, "model_code.py")) as f:
            C.eq(f.read(), MODEL_CODE, "model code bytes via models:/@champion")
        return
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    C.eq(list(model.predict([1, 2, 3])), [11, 12, 13], "prediction of loaded model")


def step_metric_history():
    hist = client().get_metric_history(STATE["run_id"], "acc")
    got = sorted((m.step, m.value, m.timestamp) for m in hist)
    C.eq(got, [(s, v, T0 + s * 1000) for s, v in ACC], "acc history")
    f1 = sorted((m.step, m.value) for m in client().get_metric_history(STATE["run_id"], "f1"))
    C.eq(f1, F1, "f1 history (from log_batch)")
    C.eq(client().get_metric_history(STATE["run_id"], "no-such-metric"), [], "unknown metric")


def step_end_run():
    mlflow.end_run()  # status FINISHED
    C.eq(mlflow.active_run(), None, "no active run after end_run")
    run = client().get_run(STATE["run_id"])
    C.eq(run.info.status, "FINISHED", "main run status")
    C.check(run.info.end_time is not None and run.info.end_time >= run.info.start_time,
            f"end_time {run.info.end_time} vs start_time {run.info.start_time}")
    C.eq(RunStatus.to_string(RunStatus.FINISHED), run.info.status, "status string")


def _search(filter_string, order_by=None, view=ViewType.ACTIVE_ONLY):
    runs = client().search_runs(
        [STATE["experiment_id"]], filter_string=filter_string, run_view_type=view,
        order_by=order_by,
    )
    return [r.info.run_id for r in runs]


def step_search_runs():
    main, child, sib = STATE["run_id"], STATE["child_run_id"], STATE["sibling_run_id"]
    got = _search("metrics.acc > 0.5 and params.lr = '0.01'")
    C.eq(got, [main], "search acc > 0.5 and lr = '0.01'")
    got = _search("tags.team = 'mlsec'", order_by=["metrics.acc DESC"])
    C.eq(got, [main, sib, child], "search tags.team ordered by acc DESC")
    got = _search("tags.team = 'mlsec' and attributes.status = 'FINISHED'",
                  order_by=["metrics.acc ASC"])
    C.eq(got, [child, sib, main], "search finished runs ordered by acc ASC")
    got = _search("params.lr = '0.01'", order_by=["metrics.acc DESC"])
    C.eq(got, [main, child], "search lr = '0.01'")
    got = _search("attributes.run_name = 'train-lr-0.1'")
    C.eq(got, [sib], "search by run_name")
    got = _search("metrics.acc > 2")
    C.eq(got, [], "search matching nothing")
    # Paging: max_results=1 returns a token; following it yields the rest.
    c = client()
    page1 = c.search_runs([STATE["experiment_id"]], "tags.team = 'mlsec'", max_results=1,
                          order_by=["metrics.acc DESC"])
    C.eq([r.info.run_id for r in page1], [main], "page 1")
    C.check(page1.token, "page 1 has a next page token")
    page2 = c.search_runs([STATE["experiment_id"]], "tags.team = 'mlsec'", max_results=2,
                          order_by=["metrics.acc DESC"], page_token=page1.token)
    C.eq([r.info.run_id for r in page2], [sib, child], "page 2")
    # fluent search_runs without pandas: output_format="list"
    runs = mlflow.search_runs([STATE["experiment_id"]], filter_string="params.lr = '0.1'",
                              output_format="list")
    C.eq([r.info.run_id for r in runs], [sib], "mlflow.search_runs(output_format='list')")


def step_delete_restore_run():
    c, sib = client(), STATE["sibling_run_id"]
    c.delete_run(sib)
    C.eq(c.get_run(sib).info.lifecycle_stage, "deleted", "lifecycle after delete_run")
    C.check(sib not in _search("tags.team = 'mlsec'"), "deleted run still in ACTIVE_ONLY search")
    C.check(sib in _search("tags.team = 'mlsec'", view=ViewType.DELETED_ONLY),
            "deleted run not in DELETED_ONLY search")
    c.restore_run(sib)
    C.eq(c.get_run(sib).info.lifecycle_stage, "active", "lifecycle after restore_run")
    C.check(sib in _search("tags.team = 'mlsec'"), "restored run missing from search")


def step_search_registry():
    c = client()
    rms = c.search_registered_models(filter_string=f"name = '{MODEL_NAME}'")
    C.eq([m.name for m in rms], [MODEL_NAME], "search_registered_models by name")
    rms = c.search_registered_models(filter_string=f"name LIKE 'mlsec-interop-model-{SUFFIX}%'")
    C.eq([m.name for m in rms], [MODEL_NAME], "search_registered_models LIKE")
    mvs = c.search_model_versions(f"name = '{MODEL_NAME}'")
    C.eq(sorted(m.version for m in mvs), ["1", "2"], "search_model_versions by name")
    mvs = c.search_model_versions(f"run_id = '{STATE['run_id']}'")
    C.eq(sorted(m.version for m in mvs), ["1", "2"], "search_model_versions by run_id")


def step_errors():
    c = client()
    e = C.raises(lambda: c.get_run("0" * 32), "get_run of an unknown id")
    C.eq(e.error_code, "RESOURCE_DOES_NOT_EXIST", "error_code of unknown run")
    e = C.raises(lambda: c.get_registered_model(f"nope-{SUFFIX}"), "unknown registered model")
    C.eq(e.error_code, "RESOURCE_DOES_NOT_EXIST", "error_code of unknown model")
    e = C.raises(lambda: c.create_experiment(EXPERIMENT_NAME), "duplicate experiment")
    C.eq(e.error_code, "RESOURCE_ALREADY_EXISTS", "error_code of duplicate experiment")


class _Evil:
    """Pickles to a call of os.system; the script only ever dumps it, never loads it."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def step_quarantine():
    c = client()
    d = os.path.join(STATE["tmp"], "evil-src")
    os.makedirs(os.path.join(d, "model"), exist_ok=True)
    with open(os.path.join(d, "model", "model.pkl"), "wb") as f:
        f.write(pickle.dumps(_Evil()))
    with open(os.path.join(d, "MLmodel"), "w") as f:
        f.write("flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
                "    model_path: model/model.pkl\n")
    run = c.create_run(STATE["experiment_id"], run_name="evil-upload")
    rid = run.info.run_id
    STATE["evil_run_id"] = rid
    c.log_artifacts(rid, d, artifact_path="evil_model")
    c.set_terminated(rid, "FINISHED")
    # await_creation_for=0: the client would raise inside create_model_version if the
    # server reported FAILED_REGISTRATION; this step wants the version and its status.
    try:
        mv = c.create_model_version(MODEL_NAME, source=f"runs:/{rid}/evil_model", run_id=rid,
                                    await_creation_for=0)
    except MlflowException as e:
        raise CheckFailed(f"create_model_version itself was refused ({e.error_code}: "
                          f"{e.message[:200]}); expected a version whose alias is refused")
    deadline = time.time() + 60
    while mv.status == "PENDING_REGISTRATION" and time.time() < deadline:
        time.sleep(0.5)
        mv = c.get_model_version(MODEL_NAME, mv.version)
    print(f"note: evil model version {mv.version} status={mv.status} "
          f"message={mv.status_message!r} tags={mv.tags}")
    try:
        # `challenger` is an ordinary alias (no promotion rights needed): the refusal must come
        # from the quarantine, not from the caller's permissions.
        c.set_registered_model_alias(MODEL_NAME, "challenger", mv.version)
    except MlflowException as e:
        C.n += 1
        print(f"note: alias on quarantined version refused: {e.error_code}: {e.message[:200]}")
        C.check(e.error_code != "INTERNAL_ERROR", f"refusal should be a 4xx, got {e.error_code}")
        C.check("quarantined" in e.message, f"refusal should name the quarantine: {e.message[:200]}")
        C.check("QUARANTINED" in (mv.status_message or ""),
                f"status_message should report the quarantine: {mv.status_message!r}")
        aliases = c.get_registered_model(MODEL_NAME).aliases
        C.check("challenger" not in aliases, f"refused alias is set anyway: {aliases}")
        C.eq(aliases.get("champion"), "2", "champion alias untouched by the refusal")
        return
    raise CheckFailed(f"setting an alias on quarantined version {mv.version} succeeded")


STEPS = [
    step_server_reachable,
    step_set_experiment,
    step_start_run,
    step_log_params,
    step_log_metrics,
    step_log_batch,
    step_set_tags,
    step_nested_child_run,
    step_sibling_run,
    step_log_input,
    step_log_artifacts,
    step_list_artifacts,
    step_download_artifacts,
    step_log_model,
    step_register_second_version,
    step_alias,
    step_registry_tags_and_descriptions,
    step_load_model,
    step_metric_history,
    step_end_run,
    step_search_runs,
    step_delete_restore_run,
    step_search_registry,
    step_errors,
]


def main():
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        print("FAIL [setup] MLFLOW_TRACKING_URI is not set")
        return 1
    steps = STEPS + ([step_quarantine] if EXPECT_QUARANTINE else [])
    STATE["tmp"] = tempfile.mkdtemp(prefix="mlsec-interop-")
    try:
        for fn in steps:
            C.step = fn.__name__.removeprefix("step_")
            fn()
    except CheckFailed as e:
        print(f"FAIL [{C.step}] {e}")
        return 1
    except Exception as e:  # an unexpected error from the client or the server
        traceback.print_exc()
        print(f"FAIL [{C.step}] unexpected {type(e).__name__}: {e}")
        return 1
    finally:
        if mlflow.active_run() is not None:
            mlflow.end_run("FAILED")
        shutil.rmtree(STATE["tmp"], ignore_errors=True)
    mode = ("pyfunc-pickle" if PYFUNC_PICKLE else "pyfunc") if HAVE_PYFUNC else "no-pandas"
    print(f"OK {C.n} checks ({mode}{', quarantine' if EXPECT_QUARANTINE else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
