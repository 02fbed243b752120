"""Client side of the serving checks: requests, plans, and the isolated session process.

`benchmarks/serving_session.py` plays the TF Serving model server in a process that
imports only `tensorflow` and `tensorflow_text` (and the `tensorflow_serving`
protos) and cannot import keras-act. This module, on the test side, builds
`PredictRequest` protos (with `tensorflow-serving-api`) and REST bodies, runs
a plan through that process and decodes its answers.

Plan keys (all optional; without `version_dir` only the isolation report is
made): `loader` (`"session"`, the default: the TF1 session loader, as the
model server; `"saved_model_load"`: `tf.saved_model.load`, `grpc` requests
only), `ops` (bool: list the graph's ops against the op registry), `warmup`
(bool: run the warm-up file), `grpc` (`{key: PredictRequest}`, sent in
order), `rest` (`{key: JSON body}`), `raw` (`{key: {"signature", "feeds"}}`:
plain `Session.run` on tensor names) and `load` (`{"requests":
[PredictRequest], "threads", "total"}`).

The child runs with `-I -S`, so it neither knows a virtualenv nor runs `.pth`
files: it is given this process's site-packages folders
(`parent_site_packages`).
"""

import base64
import json
import os
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

REPO = Path(__file__).resolve().parents[1]
SESSION_SCRIPT = REPO / "benchmarks" / "serving_session.py"


def parent_site_packages():
    """The site-packages folders of this interpreter, for the isolated child.

    `site.getsitepackages()` here, in the calling process, where `site` has
    read the virtualenv's `pyvenv.cfg` (the child runs with `-S` and would
    get the base interpreter's folders), and the user site-packages when
    this process uses it (`pip install --user`). The repository itself is
    never one of them; an editable install of keras-act lives in a `.pth`
    hook that the child does not run.

    Returns:
        A list of existing folders.
    """
    candidates = list(site.getsitepackages())
    if site.ENABLE_USER_SITE and site.getusersitepackages() in sys.path:
        candidates.append(site.getusersitepackages())
    folders = []
    for folder in candidates:
        path = Path(folder).resolve()
        if path.is_dir() and path != REPO and str(path) not in folders:
            folders.append(str(path))
    return folders


def predict_request(signature_name, inputs, model_name="model", output_filter=()):
    """A `PredictRequest`; `inputs` maps names to arrays (kept at their dtype)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
            value = np.array([v.encode("utf-8") for v in value], dtype=object)
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    request.output_filter.extend(output_filter)
    return request


def text_request(texts, signature_name="serving_default", **named):
    """A raw-text request: `text` (and any other named string inputs)."""
    inputs = {"text": _strings(texts)}
    inputs.update({name: _strings(value) for name, value in named.items()})
    return predict_request(signature_name, inputs)


def _strings(texts):
    return np.array([t if isinstance(t, bytes) else t.encode("utf-8") for t in texts], dtype=object)


def run_isolated(plan, timeout=600):
    """Runs a plan in a fresh `python -I -S benchmarks/serving_session.py` process.

    Args:
        plan: a dict (see the module docstring; protos are encoded here), or
            a list of such dicts, run one after the other in the same process.
        timeout: seconds.

    Returns:
        The results dict (a list of them for a list of plans), with gRPC and
        warm-up responses decoded to `{"outputs": {alias: np.ndarray}}` or
        `{"error": {"code", "message"}}`.
    """
    plans = [_encode_plan(p) for p in (plan if isinstance(plan, list) else [plan])]
    with tempfile.TemporaryDirectory() as work:
        plan_path = os.path.join(work, "plan.json")
        results_path = os.path.join(work, "results.json")
        with open(plan_path, "w", encoding="utf-8") as file:
            json.dump(plans, file)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PYTHON", "KERAS_ACT"))
        }
        env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        completed = subprocess.run(
            [
                sys.executable,
                "-I",
                "-S",
                str(SESSION_SCRIPT),
                "--site-packages",
                os.pathsep.join(parent_site_packages()),
                plan_path,
                results_path,
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"The isolated serving process failed ({completed.returncode}):\n"
                f"{completed.stderr[-6000:]}"
            )
        with open(results_path, encoding="utf-8") as file:
            results = [_decode_results(r) for r in json.load(file)]
    return results if isinstance(plan, list) else results[0]


def _encode_plan(plan):
    plan = dict(plan)
    if plan.get("version_dir") is not None:
        plan["version_dir"] = os.path.abspath(plan["version_dir"])
    plan["grpc"] = {key: _encode(request) for key, request in plan.get("grpc", {}).items()}
    plan["rest"] = {
        key: body if isinstance(body, str) else json.dumps(body)
        for key, body in plan.get("rest", {}).items()
    }
    for key in ("load", "batched_load"):
        if plan.get(key):
            plan[key] = dict(plan[key], requests=[_encode(r) for r in plan[key]["requests"]])
    return plan


def _decode_results(results):
    for key, answer in results.get("grpc", {}).items():
        results["grpc"][key] = decode_answer(answer)
    for index, answer in enumerate(results.get("warmup", [])):
        results["warmup"][index] = dict(
            decode_answer(answer),
            request=predict_pb2.PredictRequest.FromString(base64.b64decode(answer["request"])),
        )
    for answer in results.get("rest", {}).values():
        answer["body"] = json.loads(answer["body"])
    return results


def decode_answer(answer):
    """A session answer to `{"outputs": {alias: array}}` or `{"error": ...}`."""
    if "error" in answer:
        return {"error": answer["error"]}
    response = predict_pb2.PredictResponse.FromString(base64.b64decode(answer["response"]))
    return {
        "outputs": {alias: tf.make_ndarray(proto) for alias, proto in response.outputs.items()},
        "model_spec": response.model_spec,
    }


def _encode(request):
    return base64.b64encode(request.SerializeToString()).decode("ascii")
