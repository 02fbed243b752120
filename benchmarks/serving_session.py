"""A stand-in for the TensorFlow Serving model server, run in an isolated process.

A tool of the tests and of `benchmarks/serving_load.py`, not part of
keras-act. The model server cannot be
installed here, so this script loads an exported version the way it does (the
TF1 session loader on the `serve` tag, then the SignatureDefs' tensor names,
as `saved_model_cli run`), in a process that imports only `tensorflow`,
`tensorflow_text` and the `tensorflow_serving.apis` protocol buffers, and that
cannot import keras-act:

    python -I -S benchmarks/serving_session.py --site-packages DIR[:DIR...] PLAN.json RESULTS.json

(`-I -S`: no current folder, no user site, no `.pth` files, so no editable
install of keras-act on the path; a `sys.meta_path` blocker refuses
`keras_act`, `keras_hub` and `training` besides.) Under `-S` the interpreter
does not know it runs in a virtualenv (`site` reads `pyvenv.cfg`), so the
caller names the site-packages folders to search: its own
(`site.getsitepackages()` in the calling process, see
`benchmarks/serving_client.py`), which the child adds to `sys.path` without
running their `.pth` files.

What TensorFlow answers is our graph's behaviour: outputs, and errors raised
while running the graph (`tf.errors.OpError`, whose code and message are
passed on unchanged). The rest is this tool's own approximation of the
server, written here and not to be taken as the package's behaviour or the
server's exact words: the REST/JSON conversion (row `instances` and columnar
`inputs` to tensors, responses to JSON), and the request checks the server
makes before running a graph (unknown signature, missing or extra inputs,
unparsable tensors). It also runs the warm-up file, lists the graph's ops
against the op registry, loads a version with `tf.saved_model.load` instead
(`"loader": "saved_model_load"`), and runs a multi-threaded load test against
the one session. `benchmarks/serving_client.py` writes plans and reads results.
"""

import sys

BLOCKED_PACKAGES = ("keras_act", "keras_hub", "training")
SITE_PACKAGES_FLAG = "--site-packages"


class _BlockedImports:
    """A `sys.meta_path` finder that refuses the packages of this repository."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in BLOCKED_PACKAGES:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: the serving process runs exported "
                "SavedModels with tensorflow and tensorflow_text only.",
                name=fullname,
            )
        return None


def _isolate(argv):
    """Checks the flags, adds the given site-packages folders to `sys.path`
    (without processing their `.pth` files: an editable install of keras-act
    is a `.pth` import hook) and installs the import blocker.

    Returns:
        `argv` without the `--site-packages` option.
    """
    if not (sys.flags.isolated and sys.flags.no_site):
        raise SystemExit("Run this script isolated: python -I -S benchmarks/serving_session.py ...")
    argv = list(argv)
    if SITE_PACKAGES_FLAG not in argv[:-1]:
        raise SystemExit(
            f"{argv[0]}: error: {SITE_PACKAGES_FLAG} DIR[:DIR...] is required: the "
            "site-packages folders of the interpreter that has tensorflow (under -S a "
            "virtualenv's own are unknown to the child)"
        )
    import os

    index = argv.index(SITE_PACKAGES_FLAG)
    folders = [folder for folder in argv[index + 1].split(os.pathsep) if folder]
    del argv[index : index + 2]
    for folder in folders:
        if folder not in sys.path:
            sys.path.append(folder)
    sys.meta_path.insert(0, _BlockedImports())
    return argv


if __name__ == "__main__":
    _ARGV = _isolate(sys.argv)

import base64  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import op_def_pb2  # noqa: E402
from tensorflow.core.protobuf import error_codes_pb2, saved_model_pb2  # noqa: E402
from tensorflow.python.client import pywrap_tf_session  # noqa: E402


def registered_ops():
    """The names of every op in this process's op registry."""
    op_list = op_def_pb2.OpList()
    op_list.ParseFromString(pywrap_tf_session.TF_GetBuffer(pywrap_tf_session.TF_GetAllOpList()))
    return {op.name for op in op_list.op}


CORE_OPS = registered_ops()  # after `import tensorflow` only
import tensorflow_text  # noqa: E402, F401  (registers the TF Text ops)

TEXT_OPS = registered_ops() - CORE_OPS
# Protocol buffers only: no op is registered by these modules.
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2  # noqa: E402

DEFAULT_SIGNATURE = "serving_default"
WARMUP_PATH = os.path.join("assets.extra", "tf_serving_warmup_requests")


class ServingError(Exception):
    """A request error, with the gRPC status code name the server would send."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class SessionServer:
    """One loaded SavedModel version, served like `tensorflow_model_server`.

    Args:
        version_dir: the version folder (`saved_models/NAME/1`).
        model_name: the name clients use. Defaults to the parent folder's.
    """

    def __init__(self, version_dir, model_name=None):
        self.version_dir = version_dir
        self.model_name = model_name or os.path.basename(
            os.path.dirname(os.path.abspath(version_dir))
        )
        self.version = int(os.path.basename(os.path.normpath(version_dir)))
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            self.meta_graph = tf.compat.v1.saved_model.loader.load(
                self.session, ["serve"], version_dir
            )
        self.signatures = dict(self.meta_graph.signature_def)

    # === gRPC Predict ===

    def predict(self, request):
        """Answers a `PredictRequest` with a `PredictResponse` (or `ServingError`).

        The checks before the graph runs (signature name, input and output
        names, tensor parsing) imitate the model server's, with messages
        written here; errors of the graph itself are TensorFlow's, unchanged.
        """
        name, arrays, aliases = self.parse(request)
        return self.response(name, aliases, self.run_arrays(name, arrays, aliases))

    def parse(self, request):
        """A request's signature name, input arrays (defaults of omitted
        inputs included, as the server feeds them) and output aliases."""
        name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise ServingError(
                "FAILED_PRECONDITION",
                f'Serving signature name: "{name}" not found in signature def',
            )
        signature = self.signatures[name]
        sent, expected = set(request.inputs), set(signature.inputs)
        missing = expected - sent - set(signature.defaults)
        if missing or sent - expected:
            # tensorflow_serving/servables/tensorflow/predict_util.cc
            raise ServingError(
                "INVALID_ARGUMENT",
                f"input size does not match signature: {len(sent)}!={len(expected)} "
                f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
                f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
                f"Missing but required: {{{','.join(sorted(missing))}}}.",
            )
        arrays = {}
        for alias in sorted(expected):
            # An input the request leaves out is fed its SignatureDef default,
            # as the server does (GetInputValues, tensorflow/cc/saved_model/util.cc).
            proto = request.inputs[alias] if alias in sent else signature.defaults[alias]
            try:
                arrays[alias] = tf.make_ndarray(proto)
            except Exception:  # noqa: BLE001 - the server's message
                raise ServingError("INVALID_ARGUMENT", f"tensor parsing error: {alias}") from None
        aliases = list(request.output_filter) or sorted(signature.outputs)
        for alias in aliases:
            if alias not in signature.outputs:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"output tensor alias not found in signature: {alias} Outputs expected "
                    f"to be in the set {{{','.join(sorted(signature.outputs))}}}.",
                )
        return name, arrays, aliases

    def run_arrays(self, name, arrays, aliases):
        """Runs signature `name` on input arrays (by alias), returns the
        arrays of the output `aliases` (or raises `ServingError`)."""
        signature = self.signatures[name]
        feeds = {
            self._tensor(signature.inputs[alias].name)._as_tf_output(): value
            for alias, value in arrays.items()
        }
        fetches = [self._tensor(signature.outputs[a].name)._as_tf_output() for a in aliases]
        try:
            # The C API call of `Session.run`, without its Python-side feed
            # conversion: tensors reach the session with the request's
            # dtypes, as in the model server.
            return self.session._call_tf_sessionrun(None, feeds, fetches, [], None)
        except tf.errors.OpError as error:
            raise ServingError(error_codes_pb2.Code.Name(error.error_code), error.message) from None

    def response(self, name, aliases, values):
        """A `PredictResponse` of output arrays."""
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.model_name
        response.model_spec.signature_name = name
        response.model_spec.version.value = self.version
        for alias, value in zip(aliases, values, strict=True):
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(value))
        return response

    def _tensor(self, name):
        return self.graph.get_tensor_by_name(name)

    # === REST :predict ===

    def rest_predict(self, body):
        """Answers a REST `:predict` body: `(http_status, response_dict)`.

        A test tool: the JSON-to-tensor conversion and the JSON of the
        response re-implement the model server's rules
        (tensorflow_serving/util/json_tensor.cc) for the tests; their error
        messages are this file's, not the package's nor the server's.
        """
        try:
            request, row_format = self._json_to_request(body)
            response = self.predict(request)
            return 200, _response_to_json(response, row_format)
        except ServingError as error:
            return 400, {"error": error.message}

    def _json_to_request(self, body):
        """JSON body to `PredictRequest`, with the server's JSON rules
        (tensorflow_serving/util/json_tensor.cc)."""
        try:
            document = json.loads(body)
        except json.JSONDecodeError as error:
            raise ServingError("INVALID_ARGUMENT", f"JSON Parse error: {error}") from None
        if not isinstance(document, dict):
            raise ServingError("INVALID_ARGUMENT", "JSON Value is not an object.")
        name = document.get("signature_name", DEFAULT_SIGNATURE)
        if not isinstance(name, str):
            raise ServingError("INVALID_ARGUMENT", "'signature_name' key must be a string value.")
        if name not in self.signatures:
            raise ServingError(
                "FAILED_PRECONDITION",
                f'Serving signature name: "{name}" not found in signature def',
            )
        signature = self.signatures[name]
        has_instances, has_inputs = "instances" in document, "inputs" in document
        if has_instances == has_inputs:
            raise ServingError(
                "INVALID_ARGUMENT",
                "Missing 'inputs' or 'instances' key"
                if not has_instances
                else "Not formatted correctly expecting only one of 'inputs' or 'instances' keys",
            )
        dtypes = {alias: tf.dtypes.as_dtype(info.dtype) for alias, info in signature.inputs.items()}
        # Inputs with a SignatureDef default (the depth budget) may be left
        # out; rows that carry one (every row alike) give it one value per
        # row. The model server's JSON rules for such inputs are not
        # verified here.
        required = {a: d for a, d in dtypes.items() if a not in signature.defaults}
        if has_instances:
            tensors = _instances_to_arrays(document["instances"], required, dtypes)
        else:
            tensors = _columns_to_arrays(document["inputs"], dtypes, required)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = name
        for alias, value in tensors.items():
            request.inputs[alias].CopyFrom(tf.make_tensor_proto(value, dtype=dtypes.get(alias)))
        return request, has_instances

    # === Warm-up, ops and load ===

    def warmup_requests(self):
        """The `PredictRequest`s of the version's warm-up file."""
        path = os.path.join(self.version_dir, WARMUP_PATH)
        requests = []
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
            log = prediction_log_pb2.PredictionLog.FromString(record)
            requests.append(log.predict_log.request)
        return requests

    def graph_ops(self):
        """The op names of the SavedModel's graph and function library."""
        saved_model = saved_model_pb2.SavedModel()
        with open(os.path.join(self.version_dir, "saved_model.pb"), "rb") as file:
            saved_model.ParseFromString(file.read())
        ops = set()
        for meta_graph in saved_model.meta_graphs:
            ops.update(node.op for node in meta_graph.graph_def.node)
            for function in meta_graph.graph_def.library.function:
                ops.update(node.op for node in function.node_def)
        return ops


class LoadedModelServer:
    """One version loaded with `tf.saved_model.load` (TF2), as a Python client does.

    Answers `PredictRequest`s by calling `loaded.signatures[name]` on the
    request's tensors (shapes and dtypes as sent). Errors raised while
    running the graph keep TensorFlow's code and message; Python-side
    argument errors of the signature function get the code `PYTHON_<type>`.

    A restored signature function takes every input: as docs/serving.md
    tells Python clients, the depth-budget inputs a request leaves out are
    passed with their defaults from the export's `keras_act_model.json`
    (unless `budget_defaults` is false).

    Args:
        version_dir: the version folder.
        model_name: the name in the responses. Defaults to the parent folder's.
        budget_defaults: bool, whether to pass the budget defaults.
    """

    def __init__(self, version_dir, model_name=None, budget_defaults=True):
        self.version_dir = version_dir
        self.model_name = model_name or os.path.basename(
            os.path.dirname(os.path.abspath(version_dir))
        )
        self.version = int(os.path.basename(os.path.normpath(version_dir)))
        self.loaded = tf.saved_model.load(version_dir)
        self.signatures = dict(self.loaded.signatures)
        self.budget = {}
        facts_path = os.path.join(version_dir, "keras_act_model.json")
        if budget_defaults and os.path.isfile(facts_path):
            with open(facts_path, encoding="utf-8") as file:
                facts = json.load(file)
            if facts.get("halting_threshold") is not None:
                self.budget = {
                    "max_layers": np.int32(facts["max_layers"]),
                    "halting_threshold": np.float32(facts["halting_threshold"]),
                }

    def predict(self, request):
        """Answers a `PredictRequest` with a `PredictResponse` (or `ServingError`)."""
        name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise ServingError("FAILED_PRECONDITION", f"no signature {name!r}")
        inputs = {
            alias: tf.constant(tf.make_ndarray(proto)) for alias, proto in request.inputs.items()
        }
        takes = set(self.signatures[name].structured_input_signature[1])
        for alias, value in self.budget.items():
            if alias in takes and alias not in inputs:
                inputs[alias] = tf.constant(value)
        try:
            outputs = self.signatures[name](**inputs)
        except tf.errors.OpError as error:
            raise ServingError(error_codes_pb2.Code.Name(error.error_code), error.message) from None
        except (TypeError, ValueError) as error:
            raise ServingError(f"PYTHON_{type(error).__name__}", str(error)) from None
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.model_name
        response.model_spec.signature_name = name
        response.model_spec.version.value = self.version
        aliases = list(request.output_filter) or sorted(outputs)
        for alias in aliases:
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(outputs[alias].numpy()))
        return response


def _json_leaf(value, dtype, alias):
    if dtype == tf.string:
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except ValueError:
                pass
            raise ServingError(
                "INVALID_ARGUMENT",
                f"JSON Value: {json.dumps(value)} not formatted correctly for base64 data",
            )
    elif dtype.is_integer:
        if isinstance(value, int) and not isinstance(value, bool):
            if dtype.min <= value <= dtype.max:
                return value
    elif dtype.is_floating:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    elif dtype == tf.bool and isinstance(value, bool):
        return value
    kind = {str: "String", bool: "Boolean", int: "Number", float: "Number"}.get(
        type(value), "Object" if isinstance(value, dict) else "Array"
    )
    raise ServingError(
        "INVALID_ARGUMENT",
        f"JSON Value: {json.dumps(value)} Type: {kind} is not of expected type: "
        f"{dtype.name} (input {alias!r})",
    )


def _json_to_array(value, dtype, alias):
    """A JSON (nested list) value to an array of `dtype`; lists must be rectangular."""

    def convert(item):
        if isinstance(item, list):
            children = [convert(child) for child in item]
            shapes = {np.shape(child) for child in children}
            if len(shapes) > 1:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"Expecting tensors in list to be of the same shape (input {alias!r}).",
                )
            return children
        return _json_leaf(item, dtype, alias)

    converted = convert(value)
    numpy_dtype = object if dtype == tf.string else dtype.as_numpy_dtype
    if isinstance(converted, list) and not converted:
        return np.zeros((0,), dtype=numpy_dtype)
    return np.array(converted, dtype=numpy_dtype)


def _is_value(item):
    """Whether a JSON item is a tensor value (not an object of named inputs)."""
    return not isinstance(item, dict) or set(item) == {"b64"}


def _single_input(values, dtypes, field, expected):
    """`values` as the one input of a one-input signature (`field`: the JSON key)."""
    names = sorted(dtypes)
    if len(names) != 1:
        raise ServingError(
            "INVALID_ARGUMENT",
            f"'{field}' of a signature with {len(names)} inputs ({','.join(names)}) "
            f"must be {expected} with a key per named input.",
        )
    return {names[0]: _json_to_array(values, dtypes[names[0]], names[0])}


def _instances_to_arrays(instances, dtypes, all_dtypes=None):
    """Row-format `instances` to arrays: every row has the keys of `dtypes`
    (the required inputs) and the same optional ones of `all_dtypes`."""
    if not isinstance(instances, list) or not instances:
        raise ServingError("INVALID_ARGUMENT", "'instances' must be a non-empty JSON array.")
    if all(_is_value(item) for item in instances):
        return _single_input(instances, dtypes, "instances", "JSON objects")
    optional = set(all_dtypes or ()) - set(dtypes)
    first = instances[0] if isinstance(instances[0], dict) else {}
    names = sorted(set(dtypes) | (optional & set(first)))
    dtypes = dict(all_dtypes or dtypes)
    columns = {}
    for index, item in enumerate(instances):
        if _is_value(item) or set(item) != set(names):
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Failed to process element: {index} of 'instances' list. JSON object: "
                f"{json.dumps(item)} keys must be equal to: {','.join(names)}",
            )
        for name in names:
            columns.setdefault(name, []).append(item[name])
    return {name: _json_to_array(values, dtypes[name], name) for name, values in columns.items()}


def _columns_to_arrays(inputs, dtypes, required=None):
    names = sorted(dtypes)
    if _is_value(inputs):
        return _single_input(inputs, dtypes if required is None else required, "inputs", "a JSON object")
    unknown = sorted(set(inputs) - set(names))
    if unknown:
        raise ServingError(
            "INVALID_ARGUMENT",
            f"input tensor alias not found in signature: {unknown[0]}. Inputs expected "
            f"to be in the set {{{','.join(names)}}}.",
        )
    return {name: _json_to_array(value, dtypes[name], name) for name, value in inputs.items()}


def _json_value(value, binary):
    """An output array to JSON values (strings as text, or b64 for `*_bytes`)."""
    value = np.asarray(value, dtype=object if isinstance(value, bytes) else None)
    if value.dtype == object:
        if binary:
            items = [{"b64": base64.b64encode(b).decode("ascii")} for b in value.ravel()]
        else:
            items = [b.decode("utf-8") for b in value.ravel()]
    elif value.dtype.kind == "f":
        # The shortest text of each float32 value, as the server prints it.
        items = [float(str(x)) for x in value.ravel()]
    else:
        return value.tolist()
    return np.array(items + [None], dtype=object)[:-1].reshape(value.shape).tolist()


def _response_to_json(response, row_format):
    outputs = {alias: tf.make_ndarray(proto) for alias, proto in response.outputs.items()}
    if not row_format:
        columns = {a: _json_value(v, a.endswith("_bytes")) for a, v in sorted(outputs.items())}
        return {"outputs": next(iter(columns.values())) if len(columns) == 1 else columns}
    batch = None
    for alias, value in sorted(outputs.items()):
        size = value.shape[0] if value.ndim else None
        if batch is None:
            batch = size
        if size is None or size != batch:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Tensor name: {alias} has inconsistent batch size: {size} expecting: {batch}",
            )
    rows = []
    for index in range(batch or 0):
        row = {a: _json_value(v[index], a.endswith("_bytes")) for a, v in sorted(outputs.items())}
        rows.append(next(iter(row.values())) if len(row) == 1 else row)
    return {"predictions": rows}


# === Plans ===


def _b64(message):
    return base64.b64encode(message.SerializeToString()).decode("ascii")


def _request_from_b64(text):
    return predict_pb2.PredictRequest.FromString(base64.b64decode(text))


def _answer(server, request, key=None):
    if key is not None:
        # Names the request that was running if the process dies (the
        # parent shows the end of stderr).
        print(f"serving_session: request {key!r}", file=sys.stderr, flush=True)
    try:
        return {"response": _b64(server.predict(request))}
    except ServingError as error:
        return {"error": {"code": error.code, "message": error.message}}


def _digest(response):
    digest = hashlib.sha256()
    for alias in sorted(response.outputs):
        value = tf.make_ndarray(response.outputs[alias])
        digest.update(f"{alias}:{value.dtype}:{value.shape}".encode())
        digest.update(b"\0".join(value.ravel()) if value.dtype == object else value.tobytes())
    return digest.hexdigest()


def load_test(server, requests, threads, total):
    """Runs `total` requests (cycling through `requests`) from `threads` threads.

    Returns:
        A dict with the single-threaded digests of `requests`, whether every
        threaded response equals the single-threaded one bit for bit, the
        latencies (seconds), the wall time and requests per second.
    """
    reference = []
    single_latencies = []
    for request in requests:
        start = time.perf_counter()
        reference.append(_digest(server.predict(request)))
        single_latencies.append(time.perf_counter() - start)
    results = [None] * total
    latencies = [0.0] * total
    errors = []
    counter = iter(range(total))
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def client():
        barrier.wait()
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            start = time.perf_counter()
            try:
                response = server.predict(requests[index % len(requests)])
            except ServingError as error:  # pragma: no cover - reported
                errors.append(f"{index}: {error.message}")
                continue
            latencies[index] = time.perf_counter() - start
            results[index] = _digest(response)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - start
    mismatches = [i for i in range(total) if results[i] != reference[i % len(requests)]]
    return {
        "threads": threads,
        "total": total,
        "distinct_requests": len(requests),
        "mismatches": mismatches[:20],
        "mismatch_count": len(mismatches),
        "errors": errors[:20],
        "wall_s": wall,
        "requests_per_s": total / wall,
        "latency_p50_ms": float(np.percentile(latencies, 50) * 1e3),
        "latency_p99_ms": float(np.percentile(latencies, 99) * 1e3),
        "single_thread_latency_p50_ms": float(np.percentile(single_latencies, 50) * 1e3),
    }


class BatchingServer:
    """The model server's batcher (`--enable_batching`) in front of a `SessionServer`.

    Concurrent `predict` calls are queued; each of `num_batch_threads`
    threads takes the oldest request and the requests queued behind it for
    the same signature, inputs and outputs (and the same inner shapes), until
    `max_batch_size` rows or `batch_timeout_micros` after the oldest
    arrived; concatenates their inputs along dimension 0, pads the batch to
    the next of `allowed_batch_sizes` with copies of the first row, runs the
    graph once and splits the outputs by rows, as
    tensorflow_serving/batching/batching_session.cc does. As there, every
    input (a default the request leaves out included) must have a batch
    dimension of the same size, and every output a batch dimension: the
    `[1]` defaults of the depth-budget inputs of a one-text request
    concatenate into one value per text, so a merged batch can mix the
    budgets of its requests (`mixed_batches` counts, per input, the batches
    whose rows held more than one value of it).

    Args:
        server: the `SessionServer`.
        parameters: dict of the `BatchingParameters` fields
            (`batching_parameters.txt`).
    """

    def __init__(self, server, parameters):
        self.server = server
        self.max_batch_size = int(parameters["max_batch_size"])
        self.allowed = sorted(parameters.get("allowed_batch_sizes") or [self.max_batch_size])
        self.timeout = int(parameters.get("batch_timeout_micros", 0)) / 1e6
        self.queue = []
        self.condition = threading.Condition()
        self.batch_sizes = []  # rows run per batch (before padding)
        self.mixed_batches = {}  # input alias -> batches with differing rows
        self.closed = False
        self.threads = [
            threading.Thread(target=self._work, daemon=True)
            for _ in range(int(parameters.get("num_batch_threads", 1)))
        ]
        for thread in self.threads:
            thread.start()

    def predict(self, request):
        name, arrays, aliases = self.server.parse(request)
        sizes = set()
        for value in arrays.values():
            if np.ndim(value) == 0:
                raise ServingError(
                    "INVALID_ARGUMENT", "Batching Run() input tensors must have at least one dimension"
                )
            sizes.add(np.shape(value)[0])
        if len(sizes) != 1:
            raise ServingError(
                "INVALID_ARGUMENT",
                "Batching Run() input tensors must have equal 0th-dimension size",
            )
        rows = sizes.pop()
        if rows > self.max_batch_size:
            raise ServingError(
                "INVALID_ARGUMENT", "Task size is larger than maximum batch size"
            )
        key = (
            name,
            tuple(aliases),
            tuple((alias, np.shape(v)[1:], str(np.asarray(v).dtype)) for alias, v in arrays.items()),
        )
        task = {"key": key, "arrays": arrays, "rows": rows, "time": time.perf_counter(),
                "done": threading.Event(), "result": None, "error": None}
        with self.condition:
            self.queue.append(task)
            self.condition.notify_all()
        task["done"].wait()
        if task["error"] is not None:
            raise task["error"]
        return self.server.response(name, list(aliases), task["result"])

    def close(self):
        with self.condition:
            self.closed = True
            self.condition.notify_all()
        for thread in self.threads:
            thread.join()

    def _take_batch(self):
        with self.condition:
            while not self.queue and not self.closed:
                self.condition.wait()
            if self.closed and not self.queue:
                return None
            first = self.queue[0]
            deadline = first["time"] + self.timeout
            while True:
                batch, rows = [], 0
                for task in self.queue:
                    if task["key"] == first["key"] and rows + task["rows"] <= self.max_batch_size:
                        batch.append(task)
                        rows += task["rows"]
                remaining = deadline - time.perf_counter()
                if rows >= self.max_batch_size or remaining <= 0 or self.closed:
                    break
                self.condition.wait(remaining)
            for task in batch:
                self.queue.remove(task)
            return batch

    def _work(self):
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            self._run(batch)

    def _run(self, batch):
        name, aliases, _ = batch[0]["key"]
        rows = sum(task["rows"] for task in batch)
        padded = next((size for size in self.allowed if size >= rows), rows)
        merged = {}
        for alias in batch[0]["arrays"]:
            parts = [np.asarray(task["arrays"][alias]) for task in batch]
            value = np.concatenate(parts, axis=0)
            if padded > rows:  # the first row of the first task, repeated
                value = np.concatenate([value, np.repeat(value[:1], padded - rows, axis=0)])
            merged[alias] = value
            # Per-example numbers (the depth budget) that differ between rows.
            if value.ndim == 1 and value.dtype != object and len(np.unique(value)) > 1:
                self.mixed_batches[alias] = self.mixed_batches.get(alias, 0) + 1
        self.batch_sizes.append(rows)
        try:
            outputs = self.server.run_arrays(name, merged, list(aliases))
            start = 0
            for task in batch:
                for value in outputs:
                    if np.ndim(value) == 0 or np.shape(value)[0] != padded:
                        raise ServingError(
                            "INVALID_ARGUMENT", "Batched output tensor has 0 dimensions"
                            if np.ndim(value) == 0 else
                            "Batched output tensor's 0th dimension does not equal the sum of "
                            "the 0th dimension sizes of the input tensors"
                        )
                task["result"] = [value[start:start + task["rows"]] for value in outputs]
                start += task["rows"]
        except ServingError as error:
            for task in batch:
                task["error"] = error
        for task in batch:
            task["done"].set()


def _outputs_of(response):
    return {alias: tf.make_ndarray(proto) for alias, proto in response.outputs.items()}


def batched_load_test(server, requests, threads, total, parameters):
    """`total` requests from `threads` threads through a `BatchingServer`.

    Returns:
        A dict like `load_test`'s, plus how each batched answer compares
        with the unbatched answer of the same request (`bit_identical`:
        all outputs equal bit for bit; non-float outputs must be equal, and
        `max_float_difference` is the largest difference of float outputs:
        a batch of another size may run other kernels) and the batch sizes
        the batcher ran.
    """
    reference, single_latencies = [], []
    for request in requests:
        start = time.perf_counter()
        reference.append(_outputs_of(server.predict(request)))
        single_latencies.append(time.perf_counter() - start)
    batcher = BatchingServer(server, parameters)
    results = [None] * total
    latencies = [0.0] * total
    errors = []
    counter = iter(range(total))
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def client():
        barrier.wait()
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            start = time.perf_counter()
            try:
                response = batcher.predict(requests[index % len(requests)])
            except ServingError as error:
                errors.append(f"{index}: {error.code}: {error.message}")
                continue
            latencies[index] = time.perf_counter() - start
            results[index] = _outputs_of(response)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - start
    batcher.close()
    bit_identical, other_mismatches, max_difference = 0, [], 0.0
    for index, outputs in enumerate(results):
        if outputs is None:
            continue
        expected = reference[index % len(requests)]
        same = True
        for alias, value in outputs.items():
            want = expected[alias]
            if value.shape != want.shape:
                other_mismatches.append(f"{index}:{alias}: shape {value.shape} != {want.shape}")
                same = False
            elif value.dtype.kind == "f":
                if value.tobytes() != want.tobytes():
                    same = False
                    max_difference = max(max_difference, float(np.max(np.abs(value - want))))
            elif not np.array_equal(value, want):
                other_mismatches.append(f"{index}:{alias}")
                same = False
        bit_identical += same
    answered = [lat for lat, out in zip(latencies, results, strict=True) if out is not None]
    return {
        "threads": threads,
        "total": total,
        "distinct_requests": len(requests),
        "parameters": parameters,
        "errors": errors[:20],
        "error_count": len(errors),
        "answered": len(answered),
        "bit_identical": bit_identical,
        "non_float_mismatches": other_mismatches[:20],
        "max_float_difference": max_difference,
        "batches": len(batcher.batch_sizes),
        "batch_sizes": sorted(set(batcher.batch_sizes)),
        "mean_batch_size": float(np.mean(batcher.batch_sizes)) if batcher.batch_sizes else 0.0,
        "mixed_batches": dict(batcher.mixed_batches),
        "wall_s": wall,
        "requests_per_s": len(answered) / wall,
        "latency_p50_ms": float(np.percentile(answered, 50) * 1e3) if answered else None,
        "latency_p99_ms": float(np.percentile(answered, 99) * 1e3) if answered else None,
        "single_thread_latency_p50_ms": float(np.percentile(single_latencies, 50) * 1e3),
    }


def run_plan(plan):
    """Runs a plan (see `benchmarks/serving_client.py`) and returns its results."""
    results = {"isolation": _isolation_report()}
    if plan.get("version_dir") is None:  # only the isolation report
        return results
    start = time.perf_counter()
    if plan.get("loader", "session") == "saved_model_load":
        server = LoadedModelServer(
            plan["version_dir"], plan.get("model_name"), plan.get("budget_defaults", True)
        )
        results["load_s"] = time.perf_counter() - start
        results["grpc"] = {
            key: _answer(server, _request_from_b64(text), key)
            for key, text in plan.get("grpc", {}).items()
        }
        results["isolation"]["modules_after"] = _blocked_modules()
        return results
    server = SessionServer(plan["version_dir"], plan.get("model_name"))
    results["load_s"] = time.perf_counter() - start
    results["signatures"] = {
        name: {
            part: {
                alias: {
                    "name": info.name,
                    "dtype": tf.dtypes.as_dtype(info.dtype).name if info.dtype else None,
                    "shape": [d.size for d in info.tensor_shape.dim],
                    "unknown_rank": info.tensor_shape.unknown_rank,
                }
                for alias, info in getattr(signature, part).items()
            }
            for part in ("inputs", "outputs")
        }
        | {"method_name": signature.method_name}
        for name, signature in server.signatures.items()
    }
    if plan.get("ops"):
        ops = server.graph_ops()
        results["ops"] = {
            "graph": sorted(ops),
            "core": sorted(ops & CORE_OPS),
            "tf_text": sorted(ops & TEXT_OPS),
            "unregistered": sorted(ops - CORE_OPS - TEXT_OPS),
            "core_registry_size": len(CORE_OPS),
            "tf_text_registry_size": len(TEXT_OPS),
        }
    if plan.get("warmup"):
        warmup = server.warmup_requests()
        results["warmup"] = [
            {"request": _b64(request), **_answer(server, request)} for request in warmup
        ]
    results["grpc"] = {
        key: _answer(server, _request_from_b64(text), key)
        for key, text in plan.get("grpc", {}).items()
    }
    results["rest"] = {}
    for key, body in plan.get("rest", {}).items():
        status, response = server.rest_predict(body)
        results["rest"][key] = {"status": status, "body": json.dumps(response, ensure_ascii=False)}
    results["raw"] = {}
    for key, spec in plan.get("raw", {}).items():
        # A plain `Session.run` on the SignatureDef's tensor names, as
        # `saved_model_cli run` does (feeds converted by the Python client).
        signature = server.signatures[spec["signature"]]
        feeds = {signature.inputs[k].name: v for k, v in spec["feeds"].items()}
        fetches = {k: v.name for k, v in signature.outputs.items()}
        try:
            outputs = server.session.run(fetches, feeds)
            results["raw"][key] = {"shapes": {k: list(v.shape) for k, v in outputs.items()}}
        except (tf.errors.OpError, ValueError, TypeError) as error:
            results["raw"][key] = {"error": f"{type(error).__name__}: {error}"}
    if plan.get("grpc_client_code"):
        results["grpc_client"] = run_grpc_client(server, plan["grpc_client_code"])
    if plan.get("load"):
        spec = plan["load"]
        results["load"] = load_test(
            server,
            [_request_from_b64(text) for text in spec["requests"]],
            spec["threads"],
            spec["total"],
        )
    if plan.get("batched_load"):
        spec = plan["batched_load"]
        results["batched_load"] = batched_load_test(
            server,
            [_request_from_b64(text) for text in spec["requests"]],
            spec["threads"],
            spec["total"],
            spec["parameters"],
        )
    results["isolation"]["modules_after"] = _blocked_modules()
    return results


def run_grpc_client(server, code):
    """Serves `PredictionService` over gRPC on a free local port and runs a client.

    `code` is the Python of a client (e.g. the one in docs/serving.md) with
    `localhost:8500` as the address; it runs here, in the isolated process,
    against this process's model server thread.

    Returns:
        A dict of the client's printed `stdout` and any `error`.
    """
    import contextlib
    import io
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            try:
                return server.predict(request)
            except ServingError as error:
                context.abort(grpc.StatusCode[error.code], error.message)

    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(), grpc_server
    )
    port = grpc_server.add_insecure_port("localhost:0")
    grpc_server.start()
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output):
            exec(compile(code.replace("localhost:8500", f"localhost:{port}"), "client", "exec"), {})
        error = None
    except Exception as exception:  # noqa: BLE001 - reported to the test
        error = f"{type(exception).__name__}: {exception}"
    finally:
        grpc_server.stop(None)
    return {"stdout": output.getvalue(), "error": error}


def _blocked_modules():
    return sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED_PACKAGES)


def _isolation_report():
    import_errors = {}
    for package in BLOCKED_PACKAGES:
        try:
            __import__(package)
            import_errors[package] = None
        except ImportError as error:
            import_errors[package] = f"{type(error).__name__}: {error}"
    from importlib.machinery import PathFinder

    return {
        # Found on sys.path at all (the blocker aside)?
        "keras_act_on_path": PathFinder.find_spec("keras_act") is not None,
        "isolated": bool(sys.flags.isolated),
        "no_site": bool(sys.flags.no_site),
        "keras_act_import_error": import_errors["keras_act"],
        "import_errors": import_errors,
        "modules": _blocked_modules(),
        "sys_path": list(sys.path),
        "tensorflow": tf.__version__,
        "tensorflow_file": tf.__file__,
        "tensorflow_text": tensorflow_text.__version__,
    }


def main(argv):
    if len(argv) != 3:
        raise SystemExit(
            "usage: python -I -S benchmarks/serving_session.py --site-packages DIR[:DIR...] "
            "PLAN.json RESULTS.json"
        )
    with open(argv[1], encoding="utf-8") as file:
        plan = json.load(file)
    # A list of plans: several exports checked in one process.
    results = [run_plan(p) for p in plan] if isinstance(plan, list) else run_plan(plan)
    with open(argv[2], "w", encoding="utf-8") as file:
        json.dump(results, file)
    return 0


if __name__ == "__main__":
    sys.exit(main(_ARGV))
