"""Malformed request tensors never take the serving process down.

The model server feeds a request's tensors to the signature's placeholders
without comparing their shapes with the SignatureDef's, and so does a Python
client calling `tf.saved_model.load(...).signatures[...]`. Every head is
exported once; its signatures are then sent, in a separate process per loader
(the TF1 session loader on the `serve` tag, as the model server, and
`tf.saved_model.load`), requests of every wrong rank and inner size for each of
their inputs, each followed by a good request. The process must live through
all of them (a crash fails the fixture, naming the request that was running),
every bad request must be refused by the exported graph itself with
`INVALID_ARGUMENT` naming the input, and the good request after it must be
answered. An empty batch is answered by every head with outputs of batch 0.
"""

import types

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

import keras_act
from benchmarks.serving_client import run_isolated
from keras_act.export import TEXT_SIGNATURE, TOKEN_IDS_SIGNATURE, export_saved_model
from tests.helpers import tiny_backbone, train_tiny_sentencepiece

# Seven exports and two serving processes: minutes on 2 shared cores.
pytestmark = pytest.mark.large

SEQUENCE_LENGTH = 16
NUM_CHOICES = 2
LOADERS = ("session", "saved_model_load")

# The raw-text inputs of each head's `serving_default` and their ranks.
TEXT_INPUTS = {
    "backbone": {"text": 1},
    "masked_lm": {"text": 1},
    "classifier": {"text": 1},
    "regressor": {"text": 1, "text_pair": 1},
    "tagger": {"text": 1},
    "answerer": {"question": 1, "context": 1},
    "chooser": {"prompt": 1, "choices": 2},
}
# The rank of each head's `serve_token_ids` inputs.
TOKEN_IDS_RANK = {name: 3 if name == "chooser" else 2 for name in TEXT_INPUTS}
TOKEN_INPUTS = ("token_ids", "segment_ids", "padding_mask")

# Wrong shapes of a rank-1 string input ([batch]) and of `choices`
# ([batch, num_choices]): (case name, shape).
BAD_TEXT_SHAPES = {
    1: [("scalar", ()), ("shape_1x0", (1, 0)), ("shape_3x0", (3, 0)), ("rank_2", (2, 1))],
    2: [("scalar", ()), ("rank_1", (3,)), ("shape_1x3x0", (1, 3, 0)), ("no_choices", (1, 0))],
}


def _text_cases():
    return [
        (head, name, case, shape)
        for head, inputs in TEXT_INPUTS.items()
        for name, rank in inputs.items()
        for case, shape in BAD_TEXT_SHAPES[rank]
    ]


def _token_cases():
    cases = []
    for head, rank in TOKEN_IDS_RANK.items():
        for name in TOKEN_INPUTS:
            cases.append((head, name, f"rank_{rank - 1}", rank - 1))
        cases.append((head, "token_ids", f"rank_{rank + 1}", rank + 1))
    return cases


TEXT_CASES = _text_cases()
TOKEN_CASES = _token_cases()


# === Requests ===


def _request(signature, inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "model"
    request.model_spec.signature_name = signature
    for name, value in inputs.items():
        dtype = tf.string if value.dtype == object else None
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
    return request


def _good_text(head, name, batch):
    if name == "choices":
        return np.array([[b"it broke .", b"it sang ."]] * batch, dtype=object).reshape(
            batch, NUM_CHOICES
        )
    text = b"the [MASK] fox sat" if head == "masked_lm" else b"the quick fox sat"
    return np.array([text] * batch, dtype=object)


def _good_text_inputs(head, batch):
    return {name: _good_text(head, name, batch) for name in TEXT_INPUTS[head]}


def _bad_string(shape):
    return np.full(shape, b"the fox", dtype=object)


def _good_token_inputs(head, batch):
    row = np.zeros(SEQUENCE_LENGTH, dtype="int32")
    row[:4] = [2, 10, 11, 3]
    mask = (row != 0).astype("int32")
    shape = (batch, NUM_CHOICES) if TOKEN_IDS_RANK[head] == 3 else (batch,)
    return {
        "token_ids": np.broadcast_to(row, (*shape, SEQUENCE_LENGTH)).copy(),
        "segment_ids": np.zeros((*shape, SEQUENCE_LENGTH), dtype="int32"),
        "padding_mask": np.broadcast_to(mask, (*shape, SEQUENCE_LENGTH)).copy(),
    }


def _wrong_rank(value, rank):
    """`value` brought to `rank`: leading axes dropped, or axes of 1 added."""
    while value.ndim > rank:
        value = value[0]
    while value.ndim < rank:
        value = value[np.newaxis]
    return np.ascontiguousarray(value)


def _plan_requests(head):
    """The head's requests, in the order they are sent: each bad one is
    followed by a good one (`KEY/then`)."""
    requests = {}
    for case_head, name, case, shape in TEXT_CASES:
        if case_head != head:
            continue
        batch = shape[0] if shape else 1
        inputs = _good_text_inputs(head, batch)
        inputs[name] = _bad_string(shape)
        requests[f"text/{name}/{case}"] = _request(TEXT_SIGNATURE, inputs)
        requests[f"text/{name}/{case}/then"] = _request(TEXT_SIGNATURE, _good_text_inputs(head, 2))
    for case_head, name, case, rank in TOKEN_CASES:
        if case_head != head:
            continue
        inputs = _good_token_inputs(head, 2)
        inputs[name] = _wrong_rank(inputs[name], rank)
        requests[f"ids/{name}/{case}"] = _request(TOKEN_IDS_SIGNATURE, inputs)
        requests[f"ids/{name}/{case}/then"] = _request(
            TOKEN_IDS_SIGNATURE, _good_token_inputs(head, 2)
        )
    requests["text/empty_batch"] = _request(TEXT_SIGNATURE, _good_text_inputs(head, 0))
    requests["ids/empty_batch"] = _request(TOKEN_IDS_SIGNATURE, _good_token_inputs(head, 0))
    requests["text/good"] = _request(TEXT_SIGNATURE, _good_text_inputs(head, 2))
    return requests


# === Exports ===


def _export_all(root):
    vocab = train_tiny_sentencepiece(root / "tiny.model")
    tokenizer = keras_act.AlbertActTokenizer(proto=vocab)
    size = tokenizer.vocabulary_size()

    def backbone(seed):
        return tiny_backbone(size, seed=seed, max_layers=3)

    def with_preprocessor(cls, **kwargs):
        return cls(tokenizer, sequence_length=SEQUENCE_LENGTH, **kwargs)

    models = {
        "backbone": (backbone(1), tokenizer, {}),
        "masked_lm": (keras_act.AlbertActPretrainer(backbone(2)), tokenizer, {"top_k": 2}),
        "classifier": (
            keras_act.AlbertActTextClassifier(
                backbone(3),
                num_classes=3,
                preprocessor=with_preprocessor(keras_act.AlbertActTextClassifierPreprocessor),
            ),
            None,
            {},
        ),
        "regressor": (
            keras_act.AlbertActTextRegressor(
                backbone(4),
                preprocessor=with_preprocessor(keras_act.AlbertActTextClassifierPreprocessor),
            ),
            None,
            {"pair": True},
        ),
        "tagger": (
            keras_act.AlbertActTokenClassifier(
                backbone(5),
                4,
                preprocessor=with_preprocessor(keras_act.AlbertActTokenClassifierPreprocessor),
            ),
            None,
            {},
        ),
        "answerer": (
            keras_act.AlbertActQuestionAnswerer(
                backbone(6),
                preprocessor=with_preprocessor(
                    keras_act.AlbertActQuestionAnswererPreprocessor, max_question_length=6
                ),
            ),
            None,
            {},
        ),
        "chooser": (
            keras_act.AlbertActMultipleChoice(
                backbone(7),
                preprocessor=with_preprocessor(keras_act.AlbertActMultipleChoicePreprocessor),
            ),
            None,
            {},
        ),
    }
    paths = {}
    for head, (model, preprocessing, kwargs) in models.items():
        sequence_length = SEQUENCE_LENGTH if preprocessing is not None else None
        paths[head] = export_saved_model(
            model,
            preprocessing,
            root / head,
            sequence_length=sequence_length,
            verify=False,
            **kwargs,
        )
    return paths


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return _export_all(tmp_path_factory.mktemp("malformed"))


@pytest.fixture(scope="module", params=LOADERS)
def served(request, exports):
    """Every head's answers in one fresh process of the given loader."""
    heads = list(TEXT_INPUTS)
    plans = [
        {"version_dir": exports[head], "loader": request.param, "grpc": _plan_requests(head)}
        for head in heads
    ]
    # A crash raises here, with the end of the process's stderr: the last
    # "serving_session: request ..." line names the request that killed it.
    results = run_isolated(plans)
    return types.SimpleNamespace(
        loader=request.param, answers={h: r["grpc"] for h, r in zip(heads, results, strict=True)}
    )


# === Checks ===


def _assert_refused_naming(answer, name):
    assert "error" in answer, f"expected an error, got outputs {sorted(answer['outputs'])}"
    error = answer["error"]
    # Raised by TensorFlow running the exported graph (not by the Python
    # wrapper of a signature, nor by the stand-in server)...
    assert error["code"] == "INVALID_ARGUMENT", error
    # ...by its request checks, which name the input.
    assert f"`{name}` must be a" in error["message"], error["message"]
    assert "assertion failed" in error["message"], error["message"]


def _assert_answered(answer, batch):
    assert "error" not in answer, answer["error"]
    assert answer["outputs"]
    for name, value in answer["outputs"].items():
        assert value.shape[:1] == (batch,), (name, value.shape)


@pytest.mark.parametrize("head, name, case, shape", TEXT_CASES)
def test_malformed_string_input_is_refused_naming_it(served, head, name, case, shape):
    answers = served.answers[head]
    _assert_refused_naming(answers[f"text/{name}/{case}"], name)
    _assert_answered(answers[f"text/{name}/{case}/then"], 2)


@pytest.mark.parametrize("head, name, case, rank", TOKEN_CASES)
def test_token_id_input_of_wrong_rank_is_refused_naming_it(served, head, name, case, rank):
    answers = served.answers[head]
    _assert_refused_naming(answers[f"ids/{name}/{case}"], name)
    _assert_answered(answers[f"ids/{name}/{case}/then"], 2)


@pytest.mark.parametrize("head", list(TEXT_INPUTS))
@pytest.mark.parametrize("signature", ["text", "ids"])
def test_empty_batch_gives_outputs_of_batch_zero(served, head, signature):
    empty = served.answers[head][f"{signature}/empty_batch"]
    _assert_answered(empty, 0)
    good = served.answers[head]["text/good"]
    _assert_answered(good, 2)
    # The same outputs, of the same ranks and inner sizes where they do not
    # depend on the texts (masked-LM fills and words do).
    if signature == "text":
        assert sorted(empty["outputs"]) == sorted(good["outputs"])
    for name, value in empty["outputs"].items():
        assert value.ndim == good["outputs"][name].ndim, name
        if name in ("updates", "token_ids", "padding_mask", "logits", "probabilities"):
            assert value.shape[1:] == good["outputs"][name].shape[1:], name
