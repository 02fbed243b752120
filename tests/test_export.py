"""Backbone export for TF Serving, checked the way the model server loads it.

One small backbone is exported once; one isolated process (benchmarks/serving_session.py:
tensorflow + tensorflow_text only, keras-act not importable) loads it with the
TF1 session loader and answers every request of this module.
"""

import base64
import json
import os
import types

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from benchmarks.serving_client import predict_request, run_isolated, text_request
from keras_act.export import TEXT_SIGNATURE, TOKEN_IDS_SIGNATURE, export_saved_model
from keras_act.tokenizers import AlbertActPreprocessor, AlbertActTokenizer
from tests.helpers import EXPORT_SEQUENCE_LENGTH as SEQUENCE_LENGTH
from tests.helpers import (
    VARIED_TEXTS,
    assert_outputs_match,
    backbone_reference,
    preprocess,
    tiny_backbone,
    train_tiny_sentencepiece,
)

TEXT_BATCHES = {
    "one": ["the quick brown fox"],
    "varied": VARIED_TEXTS,
    "eight": [f"the {w} sat on the mat" for w in "cat dog fox a zürich model layer token".split()],
}
TOKEN_ID_LENGTHS = (5, 16, 40)
INVALID_UTF8 = [b"caf\xe9 \xff\xfe ok", b"\xc3\x28 half"]
LOAD_TEXTS = [f"text {i} " + "depth " * i for i in range(12)]
BACKBONE_OUTPUTS = {
    "sequence_output",
    "pooled_output",
    "updates",
    "token_ids",
    "token_pieces",
    "padding_mask",
}


def _token_inputs(features, **overrides):
    inputs = {name: np.asarray(features[name], dtype="int32") for name in features}
    inputs.update(overrides)
    return inputs


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The export, its Keras objects, and the isolated session's answers."""
    root = tmp_path_factory.mktemp("export")
    vocab = train_tiny_sentencepiece(root / "tiny.model")
    tokenizer = AlbertActTokenizer(proto=vocab)
    backbone = tiny_backbone(tokenizer.vocabulary_size())
    base_dir = root / "saved_models" / "albert_act_backbone"
    # The call of training/pretrain.py.
    path = export_saved_model(backbone, tokenizer, str(base_dir), sequence_length=SEQUENCE_LENGTH)
    preprocessor = AlbertActPreprocessor(tokenizer, sequence_length=SEQUENCE_LENGTH)

    grpc = {f"text/{k}": text_request(texts) for k, texts in TEXT_BATCHES.items()}
    token_features = {
        length: preprocess(AlbertActPreprocessor(tokenizer, sequence_length=length), VARIED_TEXTS)
        for length in TOKEN_ID_LENGTHS
    }
    for length, features in token_features.items():
        grpc[f"ids/{length}"] = predict_request(TOKEN_IDS_SIGNATURE, _token_inputs(features))
    features = token_features[16]
    vocabulary_size = tokenizer.vocabulary_size()
    grpc.update(
        {
            "bad/invalid_utf8": text_request(INVALID_UTF8),
            "bad/empty_batch": predict_request(
                TEXT_SIGNATURE, {"text": np.zeros((0,), dtype=object)}
            ),
            "bad/text_as_int": predict_request(
                TEXT_SIGNATURE, {"text": np.array([1, 2], dtype="int32")}
            ),
            "bad/ids_as_float": predict_request(
                TOKEN_IDS_SIGNATURE,
                _token_inputs(features, token_ids=features["token_ids"].astype("float32")),
            ),
            "bad/id_out_of_range": predict_request(
                TOKEN_IDS_SIGNATURE,
                _token_inputs(
                    features, token_ids=np.full_like(features["token_ids"], vocabulary_size)
                ),
            ),
            "bad/negative_id": predict_request(
                TOKEN_IDS_SIGNATURE,
                _token_inputs(features, token_ids=np.full_like(features["token_ids"], -1)),
            ),
            "bad/shape_mismatch": predict_request(
                TOKEN_IDS_SIGNATURE,
                _token_inputs(features, segment_ids=features["segment_ids"][:, :-1]),
            ),
            "bad/too_long": predict_request(
                TOKEN_IDS_SIGNATURE,
                {
                    name: np.ones((1, backbone.max_sequence_length + 1), "int32")
                    for name in ("token_ids", "padding_mask")
                }
                | {"segment_ids": np.zeros((1, backbone.max_sequence_length + 1), "int32")},
            ),
            "output_filter": predict_request(
                TEXT_SIGNATURE, {"text": ["a b"]}, output_filter=["updates", "token_pieces"]
            ),
        }
    )
    ids_row = {
        name: features[name][:2].tolist() for name in ("token_ids", "segment_ids", "padding_mask")
    }
    rest = {
        "row": {"instances": [{"text": t} for t in VARIED_TEXTS]},
        "row_values": {"instances": VARIED_TEXTS[:3]},
        "columnar": {"signature_name": TEXT_SIGNATURE, "inputs": {"text": VARIED_TEXTS}},
        "columnar_value": {"inputs": VARIED_TEXTS[:2]},
        "b64": {
            "instances": [{"text": {"b64": base64.b64encode(t).decode()}} for t in INVALID_UTF8]
        },
        "ids_row": {
            "signature_name": TOKEN_IDS_SIGNATURE,
            "instances": [{k: v[i] for k, v in ids_row.items()} for i in range(2)],
        },
        "ids_columnar": {"signature_name": TOKEN_IDS_SIGNATURE, "inputs": ids_row},
    }
    raw = {
        "missing_feed": {"signature": TOKEN_IDS_SIGNATURE, "feeds": {"token_ids": [[2, 3]]}},
    }
    load_requests = [text_request([t]) for t in LOAD_TEXTS] + [text_request(LOAD_TEXTS[:5])]
    grpc["load/batch"] = load_requests[-1]
    results = run_isolated(
        {
            "version_dir": path,
            "ops": True,
            "warmup": True,
            "grpc": grpc,
            "rest": rest,
            "raw": raw,
            "load": {"requests": load_requests, "threads": 8, "total": 96},
        }
    )
    return types.SimpleNamespace(
        path=path,
        base_dir=str(base_dir),
        tokenizer=tokenizer,
        backbone=backbone,
        preprocessor=preprocessor,
        token_features=token_features,
        results=results,
        load_requests=load_requests,
    )


def _reference(served, texts):
    features = preprocess(served.preprocessor, texts)
    return backbone_reference(served.backbone, served.tokenizer, features)


def _outputs(served, key):
    answer = served.results["grpc"][key]
    assert "error" not in answer, answer
    return answer["outputs"]


def _error(answer):
    assert "error" in answer, f"expected an error, got outputs {sorted(answer.get('outputs', {}))}"
    return answer["error"]


# === Layout and signatures ===


def test_version_layout(served):
    assert served.path == os.path.join(served.base_dir, "1")
    assert sorted(os.listdir(served.base_dir)) == ["1", "batching_parameters.txt", "models.config"]
    contents = set(os.listdir(served.path))
    assert {"saved_model.pb", "variables", "assets.extra"} <= contents
    assert os.listdir(os.path.join(served.path, "assets.extra")) == ["tf_serving_warmup_requests"]
    config = open(os.path.join(served.base_dir, "models.config"), encoding="utf-8").read()
    assert 'name: "albert_act_backbone"' in config
    assert 'base_path: "/models/albert_act_backbone"' in config


def test_models_config_parses_as_model_server_config(served):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    text = open(os.path.join(served.base_dir, "models.config"), encoding="utf-8").read()
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert model.name == "albert_act_backbone"
    assert model.model_platform == "tensorflow"


def test_signature_defs(served):
    signatures = served.results["signatures"]
    assert {TEXT_SIGNATURE, TOKEN_IDS_SIGNATURE} <= set(signatures)
    text = signatures[TEXT_SIGNATURE]
    assert text["method_name"] == "tensorflow/serving/predict"
    assert {k: (v["dtype"], v["shape"]) for k, v in text["inputs"].items()} == {
        "text": ("string", [-1]),
        "max_layers": ("int32", []),
        "halting_threshold": ("float32", []),
    }
    assert set(text["outputs"]) == BACKBONE_OUTPUTS
    assert text["outputs"]["updates"]["dtype"] == "float32"
    assert text["outputs"]["updates"]["shape"] == [-1, SEQUENCE_LENGTH]
    ids = signatures[TOKEN_IDS_SIGNATURE]
    assert {k: (v["dtype"], v["shape"]) for k, v in ids["inputs"].items()} == {
        **{name: ("int32", [-1, -1]) for name in ("token_ids", "segment_ids", "padding_mask")},
        "max_layers": ("int32", []),
        "halting_threshold": ("float32", []),
    }
    assert set(ids["outputs"]) == BACKBONE_OUTPUTS


def test_session_process_cannot_import_keras_act(served):
    isolation = served.results["isolation"]
    assert isolation["isolated"] and isolation["no_site"]
    assert isolation["keras_act_on_path"] is False
    assert isolation["keras_act_import_error"] is not None
    assert "keras_act" in isolation["keras_act_import_error"]
    assert isolation["modules"] == [] and isolation["modules_after"] == []


# === Outputs equal the Keras model's ===


@pytest.mark.parametrize("batch", sorted(TEXT_BATCHES))
def test_text_signature_matches_keras(served, batch):
    assert_outputs_match(_outputs(served, f"text/{batch}"), _reference(served, TEXT_BATCHES[batch]))


@pytest.mark.parametrize("length", TOKEN_ID_LENGTHS)
def test_token_id_signature_matches_keras(served, length):
    features = served.token_features[length]
    expected = backbone_reference(served.backbone, served.tokenizer, features)
    outputs = _outputs(served, f"ids/{length}")
    assert outputs["updates"].shape == (len(VARIED_TEXTS), length)
    assert_outputs_match(outputs, expected)


def test_updates_count_layers_per_token(served):
    outputs = _outputs(served, "text/varied")
    updates, mask = outputs["updates"], outputs["padding_mask"]
    assert np.all(updates[mask == 0] == 0)
    real = updates[mask == 1]
    assert np.all((real >= 1) & (real <= served.backbone.max_layers))
    assert np.all(real == np.round(real))


# === Op set ===


def test_graph_ops_are_core_tensorflow_and_tensorflow_text(served):
    ops = served.results["ops"]
    assert ops["unregistered"] == []
    assert set(ops["graph"]) == set(ops["core"]) | set(ops["tf_text"])
    # The tokenizer runs in the graph, on TF Text's SentencePiece op.
    assert "TFText>FastSentencepieceTokenize" in ops["tf_text"]
    assert {"While", "Placeholder", "StatefulPartitionedCall"} <= set(ops["core"])
    assert ops["tf_text_registry_size"] > 0


def test_graph_ops_against_registry_of_tf_and_tf_text_process(served):
    """The same list, checked against a second fresh process's registry."""
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "from tensorflow.python.client import pywrap_tf_session as p\n"
        "from tensorflow.core.framework import op_def_pb2\n"
        "import tensorflow, tensorflow_text\n"
        "l = op_def_pb2.OpList(); l.ParseFromString(p.TF_GetBuffer(p.TF_GetAllOpList()))\n"
        "names = {o.name for o in l.op}\n"
        "print(json.dumps(sorted(set(json.loads(sys.argv[1])) - names)))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-I", "-c", script, json.dumps(served.results["ops"]["graph"])],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=300,
        check=True,
    )
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


# === Warm-up ===


def test_warmup_file_parses_with_serving_protos(served):
    path = os.path.join(served.path, "assets.extra", "tf_serving_warmup_requests")
    logs = [
        prediction_log_pb2.PredictionLog.FromString(record)
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator()
    ]
    assert len(logs) == 3
    assert all(log.WhichOneof("log_type") == "predict_log" for log in logs)
    requests = [log.predict_log.request for log in logs]
    assert [r.model_spec.signature_name for r in requests] == [
        TEXT_SIGNATURE,
        TEXT_SIGNATURE,
        TOKEN_IDS_SIGNATURE,
    ]
    assert all(r.model_spec.name == "albert_act_backbone" for r in requests)
    assert tf.make_ndarray(requests[0].inputs["text"]).shape == (1,)


def test_every_warmup_request_runs_and_matches_keras(served):
    warmup = served.results["warmup"]
    assert len(warmup) == 3
    for answer in warmup:
        assert "error" not in answer, answer
        request = answer["request"]
        if request.model_spec.signature_name == TEXT_SIGNATURE:
            texts = [t.decode("utf-8") for t in tf.make_ndarray(request.inputs["text"])]
            expected = _reference(served, texts)
        else:
            features = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            expected = backbone_reference(served.backbone, served.tokenizer, features)
        assert_outputs_match(answer["outputs"], expected)


# === REST ===


def _rest(served, key):
    answer = served.results["rest"][key]
    assert answer["status"] == 200, answer
    return answer["body"]


def _check_rows(rows, expected):
    assert len(rows) == len(expected["updates"])
    for index, row in enumerate(rows):
        assert set(row) == BACKBONE_OUTPUTS
        for name, value in expected.items():
            got = np.asarray(row[name])
            if np.asarray(value).dtype.kind == "f":
                np.testing.assert_allclose(got, value[index], atol=1e-5, rtol=0, err_msg=name)
            else:
                assert got.tolist() == np.asarray(value[index]).tolist(), name


def test_rest_row_format(served):
    body = _rest(served, "row")
    assert set(body) == {"predictions"}
    rows = body["predictions"]
    expected = _reference(served, VARIED_TEXTS)
    _check_rows(rows, expected)
    assert len(rows[0]["sequence_output"]) == SEQUENCE_LENGTH
    assert len(rows[0]["sequence_output"][0]) == served.backbone.hidden_dim
    assert rows[0]["token_pieces"][0] == "[CLS]"


def test_rest_row_format_with_bare_values(served):
    _check_rows(_rest(served, "row_values")["predictions"], _reference(served, VARIED_TEXTS[:3]))


def test_rest_columnar_format(served):
    body = _rest(served, "columnar")
    assert set(body) == {"outputs"}
    outputs = body["outputs"]
    assert set(outputs) == BACKBONE_OUTPUTS
    expected = _reference(served, VARIED_TEXTS)
    for name, value in expected.items():
        got = np.asarray(outputs[name])
        assert got.shape == np.shape(value), name
        if got.dtype.kind == "f":
            np.testing.assert_allclose(got, value, atol=1e-5, rtol=0, err_msg=name)
        else:
            assert got.tolist() == np.asarray(value).tolist(), name
    columns = _rest(served, "columnar_value")["outputs"]
    assert np.shape(columns["updates"]) == (2, SEQUENCE_LENGTH)


def test_rest_binary_strings(served):
    rows = _rest(served, "b64")["predictions"]
    _check_rows(rows, _reference(served, INVALID_UTF8))


def test_rest_token_id_signature(served):
    features = served.token_features[16]
    expected = backbone_reference(
        served.backbone, served.tokenizer, {k: v[:2] for k, v in features.items()}
    )
    _check_rows(_rest(served, "ids_row")["predictions"], expected)
    outputs = _rest(served, "ids_columnar")["outputs"]
    np.testing.assert_allclose(
        outputs["pooled_output"], expected["pooled_output"], atol=1e-5, rtol=0
    )


# === Bad requests (gRPC) ===


def test_empty_strings_give_cls_sep(served):
    outputs = _outputs(served, "text/varied")
    empty = VARIED_TEXTS.index("")
    assert outputs["token_ids"][empty][:3].tolist() == [2, 3, 0]
    assert outputs["padding_mask"][empty].sum() == 2
    blank = VARIED_TEXTS.index("   ")
    assert outputs["token_ids"][blank].tolist() == outputs["token_ids"][empty].tolist()


def test_long_text_is_truncated_to_sequence_length(served):
    outputs = _outputs(served, "text/varied")
    long = next(i for i, t in enumerate(VARIED_TEXTS) if len(t) > 200)
    assert outputs["padding_mask"][long].tolist() == [1] * SEQUENCE_LENGTH
    assert outputs["token_ids"][long][-1] == served.tokenizer.sep_token_id
    full = served.tokenizer(VARIED_TEXTS[long]).numpy()
    assert len(full) > SEQUENCE_LENGTH - 2
    assert outputs["token_ids"][long][1:-1].tolist() == full[: SEQUENCE_LENGTH - 2].tolist()


def test_non_ascii_and_invalid_utf8_are_defined(served):
    outputs = _outputs(served, "bad/invalid_utf8")
    assert_outputs_match(outputs, _reference(served, INVALID_UTF8))
    assert "<unk>" in [p.decode() for p in outputs["token_pieces"].ravel()]


def test_empty_batch_gives_empty_outputs(served):
    outputs = _outputs(served, "bad/empty_batch")
    assert outputs["updates"].shape == (0, SEQUENCE_LENGTH)
    assert outputs["pooled_output"].shape == (0, served.backbone.hidden_dim)


@pytest.mark.parametrize(
    "key, code, message",
    [
        (
            "bad/text_as_int",
            "INVALID_ARGUMENT",
            "to be string but int32 is provided",
        ),
        ("bad/ids_as_float", "INVALID_ARGUMENT", "but float is provided"),
        ("bad/id_out_of_range", "INVALID_ARGUMENT", "< vocabulary_size="),
        ("bad/negative_id", "INVALID_ARGUMENT", "`token_ids` must be >= 0"),
        (
            "bad/shape_mismatch",
            "INVALID_ARGUMENT",
            "`segment_ids` must have the shape of `token_ids`",
        ),
        ("bad/too_long", "INVALID_ARGUMENT", "max_sequence_length=64"),
    ],
)
def test_bad_requests_get_clear_errors(served, key, code, message):
    # Raised by TensorFlow running the exported graph: its dtype checks of
    # the signature's arguments, and the model's own input checks.
    error = _error(served.results["grpc"][key])
    assert error["code"] == code
    assert message in error["message"]


def test_output_filter(served):
    outputs = _outputs(served, "output_filter")
    assert sorted(outputs) == ["token_pieces", "updates"]


def test_unfed_input_is_a_clear_session_error(served):
    # TensorFlow's own answer: every input of the SignatureDef is required.
    error = served.results["raw"]["missing_feed"]["error"]
    assert "You must feed a value for placeholder tensor" in error
    assert "segment_ids" in error or "padding_mask" in error


# === Load ===


def test_threaded_load_equals_single_threaded(served):
    load = served.results["load"]
    assert load["threads"] == 8 and load["total"] == 96
    assert load["errors"] == []
    assert load["mismatch_count"] == 0, load["mismatches"]


def test_load_test_requests_match_keras(served):
    # The load test compares threaded answers with single-threaded ones of the
    # same session; these are the Keras model's.
    assert_outputs_match(_outputs(served, "load/batch"), _reference(served, LOAD_TEXTS[:5]))
