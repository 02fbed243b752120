"""Server-side batching: `batching_parameters.txt` and batched single-text requests.

One tiny backbone is exported once (with the optional depth-budget
inputs: the `[1]` defaults of single-text requests are concatenated like
their texts; mixed budgets in one batch are tested in
tests/test_serving_depth_budget.py). One isolated process
(benchmarks/serving_session.py: tensorflow + tensorflow_text only, the TF1
session loader) answers concurrent single-text requests through a batcher
that merges them as the model server's does (`BatchingServer`: concatenate,
pad to an allowed batch size with copies of the first row, run once,
split).
"""

import os

import numpy as np
import pytest

from benchmarks.serving_client import run_isolated, text_request
from keras_act.export import export_saved_model
from keras_act.export.batching import BATCHING_PARAMETERS_FILE, parse_batching_parameters
from keras_act.tokenizers import AlbertActPreprocessor, AlbertActTokenizer
from tests.helpers import (
    EXPORT_SEQUENCE_LENGTH,
    VARIED_TEXTS,
    assert_outputs_match,
    backbone_reference,
    preprocess,
    tiny_backbone,
    train_tiny_sentencepiece,
)

# The fields of tensorflow.serving.BatchingParameters the export writes.
FIELDS = {
    "max_batch_size",
    "batch_timeout_micros",
    "num_batch_threads",
    "max_enqueued_batches",
    "allowed_batch_sizes",
}
TEXTS = [f"text {i} " + "depth " * (i % 7) for i in range(12)]
THREADS, TOTAL = 8, 48


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("batching")
    tokenizer = AlbertActTokenizer(proto=train_tiny_sentencepiece(root / "tiny.model"))
    backbone = tiny_backbone(tokenizer.vocabulary_size())
    preprocessor = AlbertActPreprocessor(tokenizer, sequence_length=EXPORT_SEQUENCE_LENGTH)
    base_dir = root / "albert_act"
    path = export_saved_model(backbone, preprocessor, base_dir)
    text = (base_dir / BATCHING_PARAMETERS_FILE).read_text(encoding="utf-8")
    parameters = parse_batching_parameters(text)
    # A longer wait than measured, so that the 8 clients' requests merge
    # even on a busy machine (the batcher's behaviour, not its timing, is tested).
    batched = dict(parameters, batch_timeout_micros=max(parameters["batch_timeout_micros"], 50_000))
    results = run_isolated(
        {
            "version_dir": path,
            "grpc": {"batch": text_request(TEXTS[:4]), "empty_and_varied": text_request(VARIED_TEXTS)},
            "batched_load": {
                "requests": [text_request([t]) for t in TEXTS],
                "threads": THREADS,
                "total": TOTAL,
                "parameters": batched,
            },
        }
    )
    return {
        "text": text,
        "parameters": parameters,
        "results": results,
        "backbone": backbone,
        "tokenizer": tokenizer,
        "preprocessor": preprocessor,
    }


def test_batching_parameters_file_is_written_beside_models_config(served):
    parameters = served["parameters"]
    assert set(parameters) == FIELDS
    allowed = parameters["allowed_batch_sizes"]
    assert allowed == sorted(set(allowed)) and allowed[0] == 1
    # The server requires the last allowed size to be max_batch_size.
    assert allowed[-1] == parameters["max_batch_size"]
    assert parameters["batch_timeout_micros"] > 0
    assert parameters["num_batch_threads"] == os.cpu_count()
    assert parameters["max_enqueued_batches"] >= parameters["num_batch_threads"]
    # The timings it was chosen from, and the server flags, as comments.
    assert "--enable_batching --batching_parameters_file=" in served["text"]
    assert "#   batch    1:" in served["text"]
    # How the depth-budget inputs batch.
    assert "a request of one text\n# may leave them out" in served["text"]


def test_batched_requests_equal_unbatched(served):
    load = served["results"]["batched_load"]
    assert load["errors"] == [] and load["answered"] == TOTAL
    # Labels, ids, strings and layer counts equal; floats within float32
    # noise (a batch of another size may run other kernels).
    assert load["non_float_mismatches"] == []
    assert load["max_float_difference"] < 1e-5
    assert load["batches"] < TOTAL, "no request was merged with another"
    assert max(load["batch_sizes"]) > 1
    assert max(load["batch_sizes"]) <= served["parameters"]["max_batch_size"]


def test_unbatched_answers_match_keras(served):
    # The batched answers were compared with these session answers.
    outputs = served["results"]["grpc"]["batch"]["outputs"]
    features = preprocess(served["preprocessor"], TEXTS[:4])
    assert_outputs_match(outputs, backbone_reference(served["backbone"], served["tokenizer"], features))
    assert np.all(outputs["updates"][features["padding_mask"] == 0] == 0)
