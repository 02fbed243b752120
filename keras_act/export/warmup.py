"""TF Serving warm-up requests (`assets.extra/`) and the `models.config` example."""

import os

import numpy as np
import tensorflow as tf

from keras_act.atomic_files import write_text_atomically

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
MODELS_CONFIG_FILE = "models.config"
# The model server reads at most this many warm-up records.
MAX_WARMUP_RECORDS = 1000


def _serving_apis():
    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError as error:  # pragma: no cover - a dependency of keras-act
        raise ImportError(
            "Writing TF Serving warm-up requests needs the `tensorflow-serving-api` "
            f"package (`pip install tensorflow-serving-api`): {error}"
        ) from None
    return model_pb2, predict_pb2, prediction_log_pb2


def predict_request(model_name, signature_name, inputs):
    """Builds a `tensorflow.serving.PredictRequest`.

    Args:
        model_name: str, the name the model server knows the model by.
        signature_name: str, the SignatureDef to run.
        inputs: dict of input name to array-like (strings as `bytes`/`str`).

    Returns:
        A `PredictRequest` proto, the message of gRPC `Predict` calls and of
        warm-up records.

    Example:

    >>> request = predict_request("albert_act", "serving_default", {"text": ["hi"]})
    >>> request.inputs["text"].dtype == tf.string.as_datatype_enum
    True
    """
    _, predict_pb2, _ = _serving_apis()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def warmup_requests(preprocessor, texts, input_names, head):
    """The warm-up requests of an export, as `(signature_name, inputs)` pairs.

    One raw-text request with the first text alone (batch of one), one with
    all texts, and one token-id request with the preprocessed texts.

    Args:
        preprocessor: the export's (built) preprocessor.
        texts: a list of strings, or of pairs (e.g. `(text, text_pair)`)
            when `input_names` has two names.
        input_names: the names of the raw-text signature's inputs.
        head: the export's `ServingHead` (its `features_from_texts` gives
            the token-id request).

    Returns:
        A list of `(signature_name, {input name: np.ndarray})`.
    """
    from keras_act.export.signatures import TEXT_SIGNATURE, TOKEN_IDS_SIGNATURE, TOKEN_INPUTS

    if len(input_names) == 2:
        columns = [np.array([t[i] for t in texts], dtype=object) for i in range(2)]
    else:
        columns = [np.array(list(texts), dtype=object)]
    text_inputs = dict(zip(input_names, columns, strict=True))
    features = head.features_from_texts(
        preprocessor, {name: tf.constant(value) for name, value in text_inputs.items()}
    )
    return [
        (TEXT_SIGNATURE, {name: value[:1] for name, value in text_inputs.items()}),
        (TEXT_SIGNATURE, text_inputs),
        (
            TOKEN_IDS_SIGNATURE,
            {name: np.asarray(features[name], dtype="int32") for name in TOKEN_INPUTS},
        ),
    ]


def write_warmup_file(version_dir, model_name, requests):
    """Writes `assets.extra/tf_serving_warmup_requests` (TFRecord of `PredictionLog`).

    Args:
        version_dir: the SavedModel folder.
        model_name: str, the model's name in the server.
        requests: a list of `(signature_name, inputs)` as `warmup_requests`
            returns.

    Returns:
        The path of the file written.
    """
    if not 1 <= len(requests) <= MAX_WARMUP_RECORDS:
        raise ValueError(
            f"TF Serving reads 1 to {MAX_WARMUP_RECORDS} warm-up records. "
            f"Received {len(requests)} requests."
        )
    _, _, prediction_log_pb2 = _serving_apis()
    directory = os.path.join(version_dir, WARMUP_DIR)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, WARMUP_FILE)
    with tf.io.TFRecordWriter(path) as writer:
        for signature_name, inputs in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(
                    request=predict_request(model_name, signature_name, inputs)
                )
            )
            writer.write(log.SerializeToString())
    return path


def read_warmup_file(path):
    """Reads a warm-up file back as a list of `PredictRequest` protos."""
    _, _, prediction_log_pb2 = _serving_apis()
    requests = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(record)
        if log.WhichOneof("log_type") != "predict_log":
            raise ValueError(
                f"{path}: expected PredictLog records, got {log.WhichOneof('log_type')}"
            )
        requests.append(log.predict_log.request)
    return requests


def models_config_text(model_name, base_dir):
    """The text of a `models.config` (ModelServerConfig) for one model.

    Args:
        model_name: str, the name clients use (`/v1/models/NAME:predict`).
        base_dir: the export's base folder (holding the version folders).

    Returns:
        A text-format `ModelServerConfig` whose `base_path` is the Docker
        mount point `/models/NAME`; the comments give the binary server's
        local path.
    """
    local = os.path.abspath(base_dir)
    return f"""\
# TensorFlow Serving model config for "{model_name}" (written by keras_act.export).
# The server loads the highest integer version folder under base_path and
# watches it for new versions; other entries (this file, .tmp-export-*) are ignored.
#
# Docker (mount this folder at /models/{model_name}):
#   docker run --rm -p 8500:8500 -p 8501:8501 \\
#     -v "{local}:/models/{model_name}" tensorflow/serving \\
#     --model_config_file=/models/{model_name}/{MODELS_CONFIG_FILE}
# Binary model server: set base_path to "{local}", then
#   tensorflow_model_server --port=8500 --rest_api_port=8501 \\
#     --model_config_file={os.path.join(local, MODELS_CONFIG_FILE)}
model_config_list {{
  config {{
    name: "{model_name}"
    base_path: "/models/{model_name}"
    model_platform: "tensorflow"
    model_version_policy {{ latest {{ num_versions: 1 }} }}
  }}
}}
"""


def write_models_config(base_dir, model_name):
    """Writes `base_dir/models.config` unless one exists (it may be edited).

    Returns:
        The path of the file.
    """
    path = os.path.join(base_dir, MODELS_CONFIG_FILE)
    if not os.path.exists(path):
        write_text_atomically(path, models_config_text(model_name, base_dir))
    return path
