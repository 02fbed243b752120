"""Export of sentence pairs, the masked LM and classifiers, checked like the model server.

Each model is exported once (the classifier through `python -m keras_act.export`
on a `.keras` file that carries its preprocessor) and served by an isolated
session process (benchmarks/serving_session.py) that cannot import keras-act.
"""

import types

import keras
import keras_hub
import numpy as np
import pytest

import keras_act
from benchmarks.serving_client import predict_request, run_isolated, text_request
from keras_act.export import (
    TEXT_SIGNATURE,
    TOKEN_IDS_SIGNATURE,
    ClassifierHead,
    export_saved_model,
    register_serving_head,
    serving_head_for,
)
from keras_act.export.__main__ import main as export_main
from keras_act.export.signatures import ServingFunctions
from keras_act.tokenizers import (
    AlbertActPairPreprocessor,
    AlbertActPreprocessor,
    AlbertActTokenizer,
)
from tests.helpers import EXPORT_SEQUENCE_LENGTH as SEQUENCE_LENGTH
from tests.helpers import (
    assert_outputs_match,
    backbone_reference,
    masked_lm_reference,
    preprocess,
    tiny_backbone,
    token_outputs,
    train_tiny_sentencepiece,
)


@keras.saving.register_keras_serializable(package="keras_act_tests")
class TinyTextClassifier(keras_hub.models.Task):
    """A keras-hub-style text classifier on `AlbertActBackbone` (logits out)."""

    backbone_cls = keras_act.AlbertActBackbone
    preprocessor_cls = AlbertActPreprocessor

    def __init__(self, backbone, num_classes, preprocessor=None, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dense = keras.layers.Dense(num_classes, name="logits")
        # === Functional Model ===
        inputs = backbone.input
        pooled = backbone(inputs)["pooled_output"]
        outputs = self.output_dense(pooled)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # === Config ===
        self.num_classes = num_classes

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes})
        return config


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    return train_tiny_sentencepiece(tmp_path_factory.mktemp("vocab") / "tiny.model")


def _outputs(results, key):
    answer = results["grpc"][key]
    assert "error" not in answer, answer
    return answer["outputs"]


# === Sentence pairs ===

FIRST = ["the quick brown fox", "", "Zürich café", " ".join(["model"] * 40)]
SECOND = ["jumps over the lazy dog", "a", "", "serving"]


@pytest.fixture(scope="module")
def exports(vocab, tmp_path_factory):
    """Four exports, checked in one isolated session process."""
    root = tmp_path_factory.mktemp("exports")
    built = {
        "pair": _export_pair(vocab, root),
        "masked_lm": _export_masked_lm(vocab, root),
        "classifier": _export_classifier(vocab, root),
        "text_classifier": _export_text_classifier(vocab, root),
    }
    results = run_isolated([export.plan for export in built.values()])
    for export, result in zip(built.values(), results, strict=True):
        export.results = result
    return built


@pytest.fixture
def pair(exports):
    return exports["pair"]


@pytest.fixture
def masked_lm(exports):
    return exports["masked_lm"]


@pytest.fixture
def classifier(exports):
    return exports["classifier"]


@pytest.fixture
def text_classifier(exports):
    return exports["text_classifier"]


def _export_pair(vocab, root):
    tokenizer = AlbertActTokenizer(proto=vocab)
    backbone = tiny_backbone(tokenizer.vocabulary_size(), seed=2)
    preprocessor = AlbertActPairPreprocessor(tokenizer, sequence_length=SEQUENCE_LENGTH)
    path = export_saved_model(
        backbone,
        preprocessor,
        root / "albert_act_pair",
        warmup_texts=list(zip(FIRST, SECOND, strict=True)),
        verify=False,  # the isolated session below runs the warm-up requests
    )
    grpc = {
        "pairs": text_request(FIRST, text_pair=SECOND),
        "one": text_request(FIRST[:1], text_pair=SECOND[:1]),
        "bad/batch_mismatch": text_request(FIRST, text_pair=SECOND[:2]),
    }
    rest = {
        "row": {
            "instances": [{"text": a, "text_pair": b} for a, b in zip(FIRST, SECOND, strict=True)]
        },
    }
    # A plain `Session.run` without `text_pair`: TensorFlow's answer.
    raw = {"missing_pair": {"signature": TEXT_SIGNATURE, "feeds": {"text": FIRST}}}
    return types.SimpleNamespace(
        tokenizer=tokenizer,
        backbone=backbone,
        preprocessor=preprocessor,
        plan={
            "version_dir": path,
            "ops": True,
            "warmup": True,
            "grpc": grpc,
            "rest": rest,
            "raw": raw,
        },
    )


def test_pair_signature_takes_text_and_text_pair(pair):
    inputs = pair.results["signatures"][TEXT_SIGNATURE]["inputs"]
    assert {k: (v["dtype"], v["shape"]) for k, v in inputs.items()} == {
        "text": ("string", [-1]),
        "text_pair": ("string", [-1]),
        "max_layers": ("int32", []),
        "halting_threshold": ("float32", []),
    }


@pytest.mark.parametrize("key, size", [("pairs", 4), ("one", 1)])
def test_pair_outputs_match_keras(pair, key, size):
    features = preprocess(pair.preprocessor, FIRST[:size], SECOND[:size])
    expected = backbone_reference(pair.backbone, pair.tokenizer, features)
    outputs = _outputs(pair.results, key)
    assert_outputs_match(outputs, expected)
    # Segment 1 starts after the first [SEP]: the pair really is packed.
    assert (features["segment_ids"] == 1).any()


def test_pair_warmup_and_ops(pair):
    assert pair.results["ops"]["unregistered"] == []
    warmup = pair.results["warmup"]
    assert len(warmup) == 3 and all("error" not in answer for answer in warmup)
    assert set(warmup[1]["request"].inputs) == {"text", "text_pair"}


def test_pair_rest_rows(pair):
    answer = pair.results["rest"]["row"]
    assert answer["status"] == 200
    rows = answer["body"]["predictions"]
    features = preprocess(pair.preprocessor, FIRST, SECOND)
    expected = backbone_reference(pair.backbone, pair.tokenizer, features)
    assert len(rows) == 4
    for index, row in enumerate(rows):
        np.testing.assert_allclose(
            row["pooled_output"], expected["pooled_output"][index], atol=1e-5, rtol=0
        )
        assert row["token_ids"] == expected["token_ids"][index].tolist()


def test_pair_bad_requests(pair):
    # `text_pair` is a required input of the graph.
    missing = pair.results["raw"]["missing_pair"]["error"]
    assert "You must feed a value for placeholder tensor" in missing
    assert "text_pair" in missing
    # Texts and pairs of different batch sizes: the graph's own check.
    mismatch = pair.results["grpc"]["bad/batch_mismatch"]["error"]
    assert mismatch["code"] == "INVALID_ARGUMENT"
    assert "`text` and `text_pair` must have the same batch size" in mismatch["message"]


# === Masked LM ===

MASKED = [
    "the cat [MASK] on the mat",
    "[MASK] quick [MASK] fox [MASK]",
    "no mask in this one",
    "",
    "[mask] [MASK]",  # lower-cased, "[mask]" is plain text
]
TOP_K = 3


def _export_masked_lm(vocab, root):
    tokenizer = AlbertActTokenizer(proto=vocab)
    backbone = tiny_backbone(tokenizer.vocabulary_size(), seed=3)
    pretrainer = keras_act.AlbertActPretrainer(backbone)
    path = export_saved_model(
        pretrainer,
        tokenizer,
        root / "albert_act_mlm",
        sequence_length=SEQUENCE_LENGTH,
        top_k=TOP_K,
        verify=False,  # the isolated session below runs the warm-up requests
    )
    preprocessor = AlbertActPreprocessor(tokenizer, sequence_length=SEQUENCE_LENGTH)
    features = preprocess(preprocessor, MASKED)
    grpc = {
        "masked": text_request(MASKED),
        "no_mask": text_request(MASKED[2:4]),
        "ids": predict_request(TOKEN_IDS_SIGNATURE, features),
    }
    rest = {"row": {"instances": [{"text": t} for t in MASKED[:2]]}}
    return types.SimpleNamespace(
        tokenizer=tokenizer,
        pretrainer=pretrainer,
        preprocessor=preprocessor,
        plan={"version_dir": path, "ops": True, "warmup": True, "grpc": grpc, "rest": rest},
    )


MLM_OUTPUTS = {
    "mask_positions",
    "top_k_ids",
    "top_k_pieces",
    "top_k_scores",
    "updates",
    "token_ids",
    "token_pieces",
    "padding_mask",
}


def test_masked_lm_signature_outputs(masked_lm):
    outputs = masked_lm.results["signatures"][TEXT_SIGNATURE]["outputs"]
    assert set(outputs) == MLM_OUTPUTS
    assert outputs["top_k_pieces"]["dtype"] == "string"
    assert outputs["top_k_ids"]["shape"] == [-1, -1, TOP_K]


@pytest.mark.parametrize("key, texts", [("masked", MASKED), ("no_mask", MASKED[2:4])])
def test_masked_lm_top_k_matches_keras(masked_lm, key, texts):
    features = preprocess(masked_lm.preprocessor, texts)
    expected = masked_lm_reference(masked_lm.pretrainer, masked_lm.tokenizer, features, TOP_K)
    outputs = _outputs(masked_lm.results, key)
    assert_outputs_match(outputs, expected)


def test_masked_lm_fills_every_mask(masked_lm):
    outputs = _outputs(masked_lm.results, "masked")
    counts = [text.count("[MASK]") for text in MASKED]
    assert outputs["mask_positions"].shape == (len(MASKED), max(counts))
    for row, count in enumerate(counts):
        positions = outputs["mask_positions"][row]
        assert (positions >= 0).sum() == count
        ids = outputs["token_ids"][row][positions[:count]]
        assert (ids == masked_lm.tokenizer.mask_token_id).all()
        assert (outputs["top_k_ids"][row, count:] == -1).all()
        scores = outputs["top_k_scores"][row, :count]
        assert (np.diff(scores, axis=-1) <= 0).all() and (scores > 0).all()
    assert _outputs(masked_lm.results, "no_mask")["top_k_ids"].shape == (2, 0, TOP_K)


def test_masked_lm_token_id_signature(masked_lm):
    features = preprocess(masked_lm.preprocessor, MASKED)
    expected = masked_lm_reference(masked_lm.pretrainer, masked_lm.tokenizer, features, TOP_K)
    assert_outputs_match(_outputs(masked_lm.results, "ids"), expected)


def test_masked_lm_warmup_has_masks_and_runs(masked_lm):
    warmup = masked_lm.results["warmup"]
    assert all("error" not in answer for answer in warmup)
    # The default warm-up texts hold masks early enough for short sequences.
    assert (warmup[0]["outputs"]["mask_positions"] >= 0).sum() == 1
    assert (warmup[1]["outputs"]["mask_positions"] >= 0).sum() == 3
    assert masked_lm.results["ops"]["unregistered"] == []


def test_masked_lm_rest_rows(masked_lm):
    answer = masked_lm.results["rest"]["row"]
    assert answer["status"] == 200
    rows = answer["body"]["predictions"]
    assert [set(row) for row in rows] == [MLM_OUTPUTS] * 2
    assert np.shape(rows[1]["top_k_pieces"]) == (3, TOP_K)
    assert np.shape(rows[0]["top_k_scores"]) == (3, TOP_K)
    assert rows[0]["top_k_pieces"][1] == ["", "", ""]


# === Classifier (.keras with its preprocessor, through the CLI) ===

CLASSIFY = ["a great movie", "", "the worst model of all", "Zürich"]


def _export_classifier(vocab, root):
    tokenizer = AlbertActTokenizer(proto=vocab)
    preprocessor = AlbertActPreprocessor(tokenizer, sequence_length=SEQUENCE_LENGTH)
    backbone = tiny_backbone(tokenizer.vocabulary_size(), seed=4)
    model = TinyTextClassifier(backbone, num_classes=3, preprocessor=preprocessor)
    model.save(root / "classifier.keras")
    base_dir = root / "saved_models" / "classifier"
    assert export_main(["--model", str(root / "classifier.keras"), "--out", str(base_dir)]) == 0
    path = str(base_dir / "1")
    grpc = {"texts": text_request(CLASSIFY), "one": text_request(CLASSIFY[:1])}
    rest = {"columnar": {"inputs": {"text": CLASSIFY}}}
    return types.SimpleNamespace(
        tokenizer=tokenizer,
        model=model,
        preprocessor=preprocessor,
        plan={"version_dir": path, "warmup": True, "grpc": grpc, "rest": rest},
    )


def _classifier_reference(classifier, texts):
    features = preprocess(classifier.preprocessor, texts)
    logits = np.asarray(classifier.model(features, training=False))
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    return {
        "logits": logits,
        "probabilities": probabilities,
        "label": logits.argmax(-1).astype("int32"),
        "updates": np.asarray(classifier.model.backbone(features, training=False)["updates"]),
        **token_outputs(classifier.tokenizer, features),
    }


@pytest.mark.parametrize("key, size", [("texts", 4), ("one", 1)])
def test_classifier_outputs_match_keras(classifier, key, size):
    assert_outputs_match(
        _outputs(classifier.results, key), _classifier_reference(classifier, CLASSIFY[:size])
    )


def test_classifier_rest_columnar(classifier):
    answer = classifier.results["rest"]["columnar"]
    assert answer["status"] == 200
    outputs = answer["body"]["outputs"]
    assert np.shape(outputs["probabilities"]) == (4, 3)
    assert np.shape(outputs["label"]) == (4,)
    np.testing.assert_allclose(np.sum(outputs["probabilities"], -1), 1.0, atol=1e-6)
    assert all("error" not in answer for answer in classifier.results["warmup"])


def test_classifier_head_reads_updates_from_the_task_graph(classifier):
    head = serving_head_for(classifier.model, classifier.tokenizer)
    assert isinstance(head, ClassifierHead)
    features = preprocess(classifier.preprocessor, CLASSIFY)
    outputs = head(features)
    expected = _classifier_reference(classifier, CLASSIFY)
    np.testing.assert_allclose(outputs["logits"], expected["logits"], atol=1e-6, rtol=0)
    np.testing.assert_array_equal(outputs["updates"], expected["updates"])
    # The backbone is not run a second time for `updates`: the serving graph
    # holds as many loops as the backbone's own.
    backbone_head = serving_head_for(classifier.model.backbone, classifier.tokenizer)
    assert _while_loops(classifier, head) == _while_loops(classifier, backbone_head) > 0


def _while_loops(classifier, head):
    """The number of while loops of a head's token-id serving graph."""
    functions = ServingFunctions(
        classifier.preprocessor, head, classifier.tokenizer.vocabulary_size()
    )
    graph_def = functions.token_ids_endpoint.get_concrete_function().graph.as_graph_def()
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    return sum(node.op in ("While", "StatelessWhile") for node in nodes)


def test_binary_classifier_uses_sigmoid(vocab):
    tokenizer = AlbertActTokenizer(proto=vocab)
    backbone = tiny_backbone(tokenizer.vocabulary_size(), seed=5)
    model = TinyTextClassifier(backbone, num_classes=1)
    # One output column may be a score: the generic path refuses it...
    with pytest.raises(ValueError, match="No serving head for TinyTextClassifier"):
        serving_head_for(model, tokenizer)
    # ...and a registered ClassifierHead reads it as a binary logit.
    head = ClassifierHead(model, tokenizer)
    features = preprocess(AlbertActPreprocessor(tokenizer, 8), ["a", "b c"])
    outputs = head(features)
    logits = np.asarray(model(features, training=False))
    np.testing.assert_allclose(outputs["probabilities"], 1 / (1 + np.exp(-logits)), atol=1e-6)
    np.testing.assert_array_equal(outputs["label"], (logits[:, 0] > 0).astype("int32"))


# === keras-act's text classifier: sentence pairs through the CLI's --pair ===

PREMISES = ["a man plays a guitar", "", "Zürich is a city"]
HYPOTHESES = ["someone plays music", "nothing", ""]


def _export_text_classifier(vocab, root):
    tokenizer = AlbertActTokenizer(proto=vocab)
    preprocessor = keras_act.models.AlbertActTextClassifierPreprocessor(
        tokenizer, sequence_length=SEQUENCE_LENGTH
    )
    backbone = tiny_backbone(tokenizer.vocabulary_size(), seed=8)
    model = keras_act.models.AlbertActTextClassifier(
        backbone, num_classes=3, preprocessor=preprocessor
    )
    model.save(root / "mnli.keras")
    base_dir = root / "saved_models" / "mnli"
    argv = ["--model", str(root / "mnli.keras"), "--out", str(base_dir), "--pair"]
    assert export_main(argv) == 0
    grpc = {"pairs": text_request(PREMISES, text_pair=HYPOTHESES)}
    return types.SimpleNamespace(
        tokenizer=tokenizer,
        model=model,
        preprocessor=preprocessor,
        plan={"version_dir": str(base_dir / "1"), "warmup": True, "grpc": grpc},
    )


def test_text_classifier_pairs_match_keras(text_classifier):
    inputs = text_classifier.results["signatures"][TEXT_SIGNATURE]["inputs"]
    assert sorted(inputs) == ["halting_threshold", "max_layers", "text", "text_pair"]
    assert all("error" not in answer for answer in text_classifier.results["warmup"])
    features = preprocess(text_classifier.preprocessor, PREMISES, HYPOTHESES)
    depth = text_classifier.model.depth_model(features, training=False)
    logits = np.asarray(depth["logits"])
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    expected = {
        "logits": logits,
        "probabilities": probabilities,
        "label": logits.argmax(-1).astype("int32"),
        "updates": np.asarray(depth["updates"]),
        **token_outputs(text_classifier.tokenizer, features),
    }
    assert_outputs_match(_outputs(text_classifier.results, "pairs"), expected)


# === Registry ===


def test_registering_a_head_is_one_call(vocab):
    @keras.saving.register_keras_serializable(package="keras_act_tests")
    class OtherTask(TinyTextClassifier):
        pass

    class ScaledHead(ClassifierHead):
        def __call__(self, features):
            return dict(super().__call__(features), scaled=2.0 * self.logits_and_updates(features)["logits"])

    tokenizer = AlbertActTokenizer(proto=vocab)
    model = OtherTask(tiny_backbone(tokenizer.vocabulary_size(), seed=6), num_classes=2)
    assert type(serving_head_for(model, tokenizer)) is ClassifierHead
    register_serving_head(OtherTask, ScaledHead)
    assert type(serving_head_for(model, tokenizer)) is ScaledHead
    # Subclasses of a registered class use its head; the parent does not.
    assert (
        type(serving_head_for(TinyTextClassifier(model.backbone, 2), tokenizer)) is ClassifierHead
    )


def test_unservable_model_is_a_clear_error(vocab):
    tokenizer = AlbertActTokenizer(proto=vocab)
    inputs = keras.Input((None,), dtype="int32", name="token_ids")
    model = keras.Model(inputs, keras.layers.Embedding(10, 4)(inputs))
    with pytest.raises(ValueError, match="No serving head for Functional"):
        serving_head_for(model, tokenizer)
    with pytest.raises(ValueError, match="must be a `keras.Model` subclass"):
        register_serving_head(int, ClassifierHead)
    token_inputs = {
        name: keras.Input((None,), dtype="int32", name=name)
        for name in ("token_ids", "segment_ids", "padding_mask")
    }
    embedded = keras.layers.Embedding(10, 4)(token_inputs["token_ids"])
    logits = keras.Model(token_inputs, keras.layers.Dense(2)(embedded[:, 0]))
    with pytest.raises(ValueError, match="needs per-token `updates`.*backbone=None"):
        serving_head_for(logits, tokenizer)


def test_masked_lm_top_k_is_checked(vocab):
    tokenizer = AlbertActTokenizer(proto=vocab)
    pretrainer = keras_act.AlbertActPretrainer(tiny_backbone(tokenizer.vocabulary_size()))
    with pytest.raises(ValueError, match=r"`top_k` must be an int in \[1, \d+\].*top_k=0"):
        serving_head_for(pretrainer, tokenizer, top_k=0)
