"""The per-request depth budget of an export, served as the model server does.

One tiny backbone is exported twice: with the optional inputs `max_layers` /
`halting_threshold` (the default: a scalar, `[1]` or one value per text)
and without them (the graph of an export before they existed). One isolated
process (benchmarks/serving_session.py: tensorflow + tensorflow_text only,
the TF1 session loader) answers every request of this module, directly and
through a stand-in of the server's batcher (`BatchingServer`), which merges
single-text requests of different budgets into one batch; a second loads the
budget export with `tf.saved_model.load`, as a Python client does.
"""

import json
import os

import numpy as np
import pytest

from benchmarks.serving_client import predict_request, run_isolated, text_request
from keras_act.export import export_saved_model
from keras_act.export.archive import model_budget_defaults
from keras_act.export.heads import serving_head_for
from keras_act.export.signatures import ServingFunctions
from keras_act.layers import depth_budget
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

CAP = 6  # the tiny backbone's max_layers
TEXTS = VARIED_TEXTS[:4]
# One budget per text of TEXTS, all different: (max_layers, halting_threshold).
MIXED = [(CAP, 0.99), (2, 0.99), (1, 0.99), (CAP, 0.3)]
# Single-text requests for the batcher: text, then budget (None: left out).
BATCH_BUDGETS = [None, (2, None), (None, 0.5), (1, 0.3)]

# (inputs beside the texts, what the error must say)
MALFORMED = {
    "max_layers_zero": ({"max_layers": np.int32(0)}, "`max_layers` must be in [1, 6]"),
    "max_layers_above_cap": ({"max_layers": np.int32(CAP + 1)}, "`max_layers` must be in [1, 6]"),
    "max_layers_negative": ({"max_layers": np.int32(-3)}, "`max_layers` must be in [1, 6]"),
    "threshold_negative": (
        {"halting_threshold": np.float32(-0.5)},
        "`halting_threshold` must be in (0, 1]",
    ),
    "threshold_zero": ({"halting_threshold": np.float32(0.0)}, "`halting_threshold` must be in (0, 1]"),
    "threshold_above_one": (
        {"halting_threshold": np.float32(1.5)},
        "`halting_threshold` must be in (0, 1]",
    ),
    "threshold_nan": (
        {"halting_threshold": np.float32("nan")},
        "`halting_threshold` must be in (0, 1]",
    ),
    "max_layers_as_float": ({"max_layers": np.float32(2.0)}, "but float is provided"),
    "threshold_as_int": ({"halting_threshold": np.int32(1)}, "but int32 is provided"),
    # The bad requests have 2 texts: one value, or one per text.
    "max_layers_wrong_length": (
        {"max_layers": np.array([1, 2, 3], np.int32)},
        ("`max_layers` must be a scalar or hold one value per example", "] [2] [3]"),
    ),
    "max_layers_one_out_of_range": (
        {"max_layers": np.array([2, 0], np.int32)},
        "`max_layers` must be in [1, 6] (the trained cap). Received: max_layers=] [2 0]",
    ),
    "threshold_one_nan": (
        {"halting_threshold": np.array([0.5, np.nan], np.float32)},
        "`halting_threshold` must be in (0, 1]",
    ),
    "threshold_matrix": (
        {"halting_threshold": np.full((2, 1), 0.5, np.float32)},
        ("`halting_threshold` must be a scalar or hold one value per example", "] [2] [2 1]"),
    ),
    "threshold_empty": (
        {"halting_threshold": np.zeros((0,), np.float32)},
        ("`halting_threshold` must be a scalar or hold one value per example", "] [2] [0]"),
    ),
}


def _budget_inputs(max_layers, threshold, rows=1):
    """The depth-budget inputs of a request (`None`: left out), one value per row."""
    inputs = {}
    if max_layers is not None:
        inputs["max_layers"] = np.full([rows], max_layers, np.int32)
    if threshold is not None:
        inputs["halting_threshold"] = np.full([rows], threshold, np.float32)
    return inputs


def _mixed_inputs(budgets):
    return {
        "max_layers": np.array([b[0] for b in budgets], np.int32),
        "halting_threshold": np.array([b[1] for b in budgets], np.float32),
    }


BATCH_THREADS = 8
# A long wait, so that the clients' requests merge even on a busy machine
# (the batcher's behaviour, not its timing, is tested).
BATCH_PARAMETERS = {
    "max_batch_size": 8,
    "allowed_batch_sizes": [1, 2, 4, 8],
    "batch_timeout_micros": 50_000,
    "num_batch_threads": 2,
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("budget")
    tokenizer = AlbertActTokenizer(proto=train_tiny_sentencepiece(root / "tiny.model"))
    backbone = tiny_backbone(tokenizer.vocabulary_size())
    preprocessor = AlbertActPreprocessor(tokenizer, sequence_length=EXPORT_SEQUENCE_LENGTH)
    budget_path = export_saved_model(backbone, preprocessor, root / "budget", measure_batching=False)
    plain_path = export_saved_model(
        backbone,
        preprocessor,
        root / "plain",
        depth_budget_inputs=False,
        measure_batching=False,
    )
    features = preprocess(preprocessor, TEXTS)
    token_inputs = {k: features[k] for k in ("token_ids", "segment_ids", "padding_mask")}
    requests = {
        "text": text_request(TEXTS),
        "ids": predict_request("serve_token_ids", token_inputs),
        "text/cap_default_values": predict_request(
            "serving_default",
            {"text": np.array(TEXTS, dtype=object), "max_layers": np.int32(CAP),
             "halting_threshold": np.float32(0.99)},
        ),
    }
    for layers in (1, 2, 4):
        requests[f"text/max_layers={layers}"] = predict_request(
            "serving_default", {"text": np.array(TEXTS, dtype=object), "max_layers": np.int32(layers)}
        )
        requests[f"ids/max_layers={layers}"] = predict_request(
            "serve_token_ids", dict(token_inputs, max_layers=np.int32(layers))
        )
    for threshold in (0.5, 0.2):
        requests[f"text/threshold={threshold}"] = predict_request(
            "serving_default",
            {"text": np.array(TEXTS, dtype=object), "halting_threshold": np.float32(threshold)},
        )
    # One value for every text ([1]), one per text (mixed budgets: a batch
    # as the server's batcher merges it), and each text alone.
    requests["text/max_layers=[2]"] = predict_request(
        "serving_default", {"text": np.array(TEXTS, dtype=object), **_budget_inputs(2, None)}
    )
    requests["text/mixed"] = predict_request(
        "serving_default", {"text": np.array(TEXTS, dtype=object), **_mixed_inputs(MIXED)}
    )
    requests["ids/mixed"] = predict_request(
        "serve_token_ids", dict(token_inputs, **_mixed_inputs(MIXED))
    )
    for index, budget in enumerate(MIXED):
        requests[f"text/alone/{index}"] = predict_request(
            "serving_default",
            {"text": np.array(TEXTS[index : index + 1], dtype=object), **_mixed_inputs([budget])},
        )
        requests[f"ids/alone/{index}"] = predict_request(
            "serve_token_ids",
            {
                **{k: v[index : index + 1] for k, v in token_inputs.items()},
                **_mixed_inputs([budget]),
            },
        )
    for key, (inputs, _) in MALFORMED.items():
        requests[f"bad/{key}"] = predict_request(
            "serving_default", {"text": np.array(TEXTS[:2], dtype=object), **inputs}
        )
        requests[f"bad_ids/{key}"] = predict_request(
            "serve_token_ids", {**{k: v[:2] for k, v in token_inputs.items()}, **inputs}
        )
    # An empty batch: its one value is checked too; with good values it is
    # answered (no rows).
    for key, layers in (("bad/empty_batch_max_layers_zero", 0), ("empty_batch", 2)):
        requests[key] = predict_request(
            "serving_default",
            {"text": np.array([], dtype=object), "max_layers": np.array([layers], np.int32)},
        )
    # Answered after every malformed request: the process still serves.
    requests["zz/after_malformed"] = text_request(TEXTS)
    tf2_requests = {
        "text/without_budget": text_request(TEXTS),
        "text/with_budget": predict_request(
            "serving_default",
            {"text": np.array(TEXTS, dtype=object), "max_layers": np.int32(2),
             "halting_threshold": np.float32(0.99)},
        ),
    }
    batch_requests = []
    for index in range(len(TEXTS) * len(BATCH_BUDGETS)):
        text = TEXTS[(index // len(BATCH_BUDGETS)) % len(TEXTS)]
        budget = BATCH_BUDGETS[index % len(BATCH_BUDGETS)] or (None, None)
        batch_requests.append(
            predict_request(
                "serving_default",
                {"text": np.array([text], dtype=object), **_budget_inputs(*budget)},
            )
        )
    budget_results, refused_results, plain_results, tf2_results = run_isolated(
        [
            {
                "version_dir": budget_path,
                "grpc": requests,
                # Single-text requests of different budgets (left out: the
                # [1] defaults) merged by the batcher; consecutive requests
                # differ in budget.
                "batched_load": {
                    "requests": batch_requests,
                    "threads": BATCH_THREADS,
                    "total": 2 * len(batch_requests),
                    "parameters": BATCH_PARAMETERS,
                },
            },
            {
                # What the batcher refuses, as TF Serving's does: a request of
                # several texts without the budget ([1] defaults beside [2]
                # texts), and a scalar budget.
                "version_dir": budget_path,
                "batched_load": {
                    "requests": [
                        text_request(TEXTS[:2]),
                        predict_request(
                            "serving_default",
                            {"text": np.array(TEXTS[:1], dtype=object), "max_layers": np.int32(2)},
                        ),
                    ],
                    "threads": 1,
                    "total": 2,
                    "parameters": BATCH_PARAMETERS,
                },
            },
            {"version_dir": plain_path, "grpc": {"text": requests["text"], "ids": requests["ids"]}},
            {
                "version_dir": budget_path,
                "loader": "saved_model_load",
                "budget_defaults": False,
                "grpc": tf2_requests,
            },
        ]
    )
    return {
        "backbone": backbone,
        "tokenizer": tokenizer,
        "features": features,
        "budget": budget_results,
        "refused": refused_results,
        "plain": plain_results,
        "tf2": tf2_results,
        "budget_path": budget_path,
    }


def _bits(value):
    """The value's bytes (strings as a list: object arrays hold pointers)."""
    return value.tolist() if value.dtype == object else (value.dtype.str, value.shape, value.tobytes())


def _outputs(results, key):
    answer = results["grpc"][key]
    assert "outputs" in answer, answer
    return answer["outputs"]


def test_signatures_take_optional_budget_inputs(served):
    for name in ("serving_default", "serve_token_ids"):
        inputs = served["budget"]["signatures"][name]["inputs"]
        # Any rank: a scalar, [1] or [batch] (checked in the graph).
        assert inputs["max_layers"]["dtype"] == "int32" and inputs["max_layers"]["unknown_rank"]
        assert inputs["halting_threshold"]["dtype"] == "float32"
        assert inputs["halting_threshold"]["unknown_rank"]
    assert "max_layers" not in served["plain"]["signatures"]["serving_default"]["inputs"]


@pytest.mark.parametrize("key", ["text", "ids"])
def test_without_budget_inputs_outputs_are_bit_identical_to_an_export_without_them(served, key):
    budget, plain = _outputs(served["budget"], key), _outputs(served["plain"], key)
    assert sorted(budget) == sorted(plain)
    for name, value in plain.items():
        assert budget[name].dtype == value.dtype
        assert _bits(budget[name]) == _bits(value), name


def test_default_values_sent_explicitly_equal_absent(served):
    sent = _outputs(served["budget"], "text/cap_default_values")
    absent = _outputs(served["budget"], "text")
    for name, value in absent.items():
        assert _bits(sent[name]) == _bits(value), name


@pytest.mark.parametrize("layers", [1, 2, 4])
@pytest.mark.parametrize("signature", ["text", "ids"])
def test_max_layers_caps_updates_and_matches_keras(served, signature, layers):
    outputs = _outputs(served["budget"], f"{signature}/max_layers={layers}")
    mask = served["features"]["padding_mask"].astype(bool)
    assert outputs["updates"][mask].max() <= layers
    assert np.all(outputs["updates"][~mask] == 0)
    with depth_budget(max_layers=layers):
        expected = backbone_reference(served["backbone"], served["tokenizer"], served["features"])
    assert_outputs_match(outputs, expected)


def test_lower_threshold_halts_earlier_and_matches_keras(served):
    mask = served["features"]["padding_mask"].astype(bool)
    means = [_outputs(served["budget"], "text")["updates"][mask].mean()]
    for threshold in (0.5, 0.2):
        outputs = _outputs(served["budget"], f"text/threshold={threshold}")
        means.append(outputs["updates"][mask].mean())
        with depth_budget(halting_threshold=threshold):
            expected = backbone_reference(
                served["backbone"], served["tokenizer"], served["features"]
            )
        assert_outputs_match(outputs, expected)
    assert means[0] >= means[1] >= means[2]


@pytest.mark.parametrize("signature", ["bad", "bad_ids"])
@pytest.mark.parametrize("key", sorted(MALFORMED))
def test_malformed_budget_is_a_clear_error(served, signature, key):
    answer = served["budget"]["grpc"][f"{signature}/{key}"]
    assert "error" in answer, f"{key} was answered: {answer}"
    assert answer["error"]["code"] == "INVALID_ARGUMENT"
    expected = MALFORMED[key][1]
    for part in (expected,) if isinstance(expected, str) else expected:
        assert part in answer["error"]["message"]


def test_empty_batch_budget_is_checked_and_answered(served):
    answer = served["budget"]["grpc"]["bad/empty_batch_max_layers_zero"]
    assert answer["error"]["code"] == "INVALID_ARGUMENT"
    assert "`max_layers` must be in [1, 6]" in answer["error"]["message"]
    outputs = _outputs(served["budget"], "empty_batch")
    assert outputs["updates"].shape == (0, EXPORT_SEQUENCE_LENGTH)
    assert outputs["sequence_output"].shape[0] == 0


def test_process_serves_after_malformed_budgets(served):
    after = _outputs(served["budget"], "zz/after_malformed")
    assert after["updates"].tobytes() == _outputs(served["budget"], "text")["updates"].tobytes()


def test_saved_model_load_users_pass_both_inputs(served):
    # A restored TF2 signature function takes every input: the defaults are
    # in keras_act_model.json (docs/serving.md).
    missing = served["tf2"]["grpc"]["text/without_budget"]["error"]
    assert missing["code"] == "PYTHON_TypeError"
    assert "max_layers" in missing["message"]
    with_budget = _outputs(served["tf2"], "text/with_budget")
    assert with_budget["updates"].max() <= 2
    facts = json.load(open(os.path.join(served["budget_path"], "keras_act_model.json")))
    assert facts["max_layers"] == CAP
    assert np.float32(facts["halting_threshold"]) == np.float32(1 - 0.01)


def test_one_value_applies_to_every_text(served):
    one = _outputs(served["budget"], "text/max_layers=[2]")
    scalar = _outputs(served["budget"], "text/max_layers=2")
    for name, value in scalar.items():
        assert _bits(one[name]) == _bits(value), name


@pytest.mark.parametrize("signature", ["text", "ids"])
def test_mixed_budgets_in_one_batch_equal_each_text_alone(served, signature):
    # The batch the server's batcher makes of single-text requests with
    # their own budgets: each row is answered as its request alone.
    mixed = _outputs(served["budget"], f"{signature}/mixed")
    mask = served["features"]["padding_mask"].astype(bool)
    for index, (layers, threshold) in enumerate(MIXED):
        alone = _outputs(served["budget"], f"{signature}/alone/{index}")
        row = {name: value[index : index + 1] for name, value in mixed.items()}
        assert sorted(row) == sorted(alone)
        for name, value in alone.items():
            if value.dtype.kind == "f":  # float32 noise of another batch size
                np.testing.assert_allclose(row[name], value, rtol=0, atol=1e-5, err_msg=name)
            else:
                np.testing.assert_array_equal(row[name], value, err_msg=name)
        assert row["updates"][0][mask[index]].max() <= layers
        with depth_budget(max_layers=layers, halting_threshold=threshold):
            expected = backbone_reference(
                served["backbone"], served["tokenizer"],
                {k: v[index : index + 1] for k, v in served["features"].items()},
            )
        assert_outputs_match(row, expected)
    # The budgets did change the answer.
    assert not np.array_equal(mixed["updates"], _outputs(served["budget"], signature)["updates"])


def test_batcher_merges_requests_of_different_budgets(served):
    load = served["budget"]["batched_load"]
    assert load["errors"] == [] and load["answered"] == load["total"]
    # Every batched answer equals the answer to the same request alone
    # (labels, ids, pieces equal; floats within float32 noise).
    assert load["non_float_mismatches"] == []
    assert load["max_float_difference"] < 1e-5
    assert load["batches"] < load["total"] and max(load["batch_sizes"]) > 1
    # Some merged batch held requests of different budgets.
    assert load["mixed_batches"].get("max_layers", 0) >= 1
    assert load["mixed_batches"].get("halting_threshold", 0) >= 1


def test_batcher_refuses_what_tf_serving_refuses(served):
    # TF Serving's batching session needs every input, defaults included,
    # with the requests' batch size: a request of 2 texts that leaves the
    # budget out ([1] defaults) or any scalar budget is refused; the
    # server goes on serving (the test above).
    load = served["refused"]["batched_load"]
    assert load["error_count"] == 2 and load["answered"] == 0
    messages = sorted(load["errors"])
    assert "input tensors must have equal 0th-dimension size" in messages[0]
    assert "input tensors must have at least one dimension" in messages[1]


def test_fixed_depth_beyond_the_cap_is_the_default_max_layers(served):
    # A fixed-depth backbone of n > max_layers runs n layers: the budget's
    # default (and largest) max_layers is n, not the cap (it was the cap,
    # which cut every token to 6 layers).
    backbone, tokenizer = served["backbone"], served["tokenizer"]
    depth = CAP + 2
    backbone.fixed_depth = depth
    try:
        defaults = model_budget_defaults(backbone)
        assert defaults["max_layers"].tolist() == [depth]
        preprocessor = AlbertActPreprocessor(tokenizer, sequence_length=EXPORT_SEQUENCE_LENGTH)
        functions = ServingFunctions(
            preprocessor, serving_head_for(backbone, tokenizer), backbone.vocabulary_size,
            budget=defaults,
        )
        token_inputs = {
            k: served["features"][k] for k in ("token_ids", "segment_ids", "padding_mask")
        }
        outputs = functions.token_ids_endpoint(**token_inputs)
        mask = served["features"]["padding_mask"].astype(bool)
        assert np.all(np.asarray(outputs["updates"])[mask] == depth)
        expected = backbone_reference(backbone, tokenizer, served["features"])
        assert_outputs_match({k: np.asarray(v) for k, v in outputs.items()}, expected)
        capped = functions.token_ids_endpoint(**token_inputs, max_layers=np.int32(depth - 1))
        assert np.all(np.asarray(capped["updates"])[mask] == depth - 1)
    finally:
        backbone.fixed_depth = None


def test_depth_budget_benchmark_code_path(served, tmp_path):
    # benchmarks/depth_budget.py on the tiny export (no `label`: no accuracy);
    # its SST-2 run is the benchmark's own.
    from benchmarks import depth_budget as benchmark

    rows = benchmark.measure(served["budget_path"], TEXTS, None, latency_requests=2, batch_size=2)
    assert len(rows) == len(benchmark.budgets(CAP, 0.99)) == 1 + (CAP - 1) + 5
    assert rows[0]["trained"] and rows[0]["max_layers"] == CAP
    for row in rows:
        assert row["mean_layers_per_token"] <= row["max_layers"]
        assert row["accuracy"] is None and row["latency_ms_p50"] > 0
    assert next(r for r in rows if r["max_layers"] == 1)["mean_layers_per_token"] == 1.0
    table = benchmark.markdown_table(rows)
    assert table.count("\n") == len(rows) + 1
    png = benchmark.plot(rows, tmp_path / "budget.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = tmp_path / "serving.md"
    page.write_text(f"a\n{benchmark.TABLE_START}\nold\n{benchmark.TABLE_END}\nb\n", encoding="utf-8")
    benchmark.write_docs_table(table, page)
    assert page.read_text(encoding="utf-8") == (
        f"a\n{benchmark.TABLE_START}\n{table}\n{benchmark.TABLE_END}\nb\n"
    )
