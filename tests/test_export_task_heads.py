"""Export of the fine-tuning tasks (regressor, token classifier, question
answerer), checked like the model server.

Each task is built with its own preprocessor, exported with
`export_saved_model(task, None, ...)` (the token classifier through `python -m
keras_act.export` on a `.keras` file) and served by the isolated session process
(benchmarks/serving_session.py), which cannot import keras-act. References come from
the Keras models and the preprocessors' own eager helpers (`word_ids`,
`decode_answers`).
"""

import types

import numpy as np
import pytest
import tensorflow as tf

import keras_act
from benchmarks.serving_client import predict_request, run_isolated, text_request
from keras_act.export import (
    TOKEN_IDS_SIGNATURE,
    QuestionAnswererHead,
    export_saved_model,
    serving_head_for,
)
from keras_act.export.__main__ import main as export_main
from tests.helpers import (
    assert_outputs_match,
    tiny_backbone,
    token_outputs,
    train_tiny_sentencepiece,
)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    vocab = train_tiny_sentencepiece(tmp_path_factory.mktemp("vocab") / "tiny.model")
    return keras_act.AlbertActTokenizer(proto=vocab)


def _strings(values):
    return tf.constant(np.array([v.encode("utf-8") for v in values], dtype=object))


def _outputs(results, key):
    answer = results["grpc"][key]
    assert "error" not in answer, answer
    return answer["outputs"]


def _numpy(features):
    return {name: np.asarray(value) for name, value in features.items()}


# --- Regressor: sentence pairs in, a score out ---

FIRST = ["A man is playing a guitar.", "", "the quick brown fox", "café zürich"]
SECOND = ["A person plays music.", "a", "", "über 1,000"]


def _export_regressor(tokenizer, root):
    preprocessor = keras_act.AlbertActTextClassifierPreprocessor(tokenizer, sequence_length=16)
    model = keras_act.AlbertActTextRegressor(
        tiny_backbone(tokenizer.vocabulary_size(), seed=5), preprocessor=preprocessor
    )
    path = export_saved_model(model, None, root / "regressor", pair=True, verify=False)
    return types.SimpleNamespace(
        model=model,
        preprocessor=preprocessor,
        plan={
            "version_dir": path,
            "ops": True,
            "warmup": True,
            "grpc": {
                "pairs": text_request(FIRST, text_pair=SECOND),
                "one": text_request(FIRST[:1], text_pair=SECOND[:1]),
            },
            "rest": {
                "row": {
                    "instances": [
                        {"text": a, "text_pair": b} for a, b in zip(FIRST, SECOND, strict=True)
                    ]
                }
            },
        },
    )


def _regressor_reference(regressor, tokenizer, size):
    features = _numpy(regressor.preprocessor(x=(_strings(FIRST[:size]), _strings(SECOND[:size]))))
    outputs = regressor.model.depth_model(features, training=False)
    return {
        "score": np.asarray(regressor.model(features, training=False))[:, 0],
        "updates": np.asarray(outputs["updates"]),
        **token_outputs(tokenizer, features),
    }


# --- Token classifier: words in, a label per word out ---

SENTENCES = [
    "John lives in Reykjavik .",
    "",
    "the quick brown fox jumps over the lazy dog near zürich café capital",
    "  spaced\tout\nwords  ",
    # Multi-byte spaces and U+001C split words (as str.split); U+200B alone
    # is a word of no pieces, and must not shift the labels of the next ones.
    "fox \u200b the\u00a0cat\u3000sat\x1cdog \u2009 mat",
]
NUM_TAGS = 5


def _export_token_classifier(tokenizer, root):
    preprocessor = keras_act.AlbertActTokenClassifierPreprocessor(tokenizer, sequence_length=12)
    model = keras_act.AlbertActTokenClassifier(
        tiny_backbone(tokenizer.vocabulary_size(), seed=6), NUM_TAGS, preprocessor=preprocessor
    )
    model.save(root / "tagger.keras")
    base_dir = root / "tagger"
    assert export_main(["--model", str(root / "tagger.keras"), "--out", str(base_dir)]) == 0
    return types.SimpleNamespace(
        model=model,
        preprocessor=preprocessor,
        plan={
            "version_dir": str(base_dir / "1"),
            "ops": True,
            "warmup": True,
            "grpc": {
                "texts": text_request(SENTENCES),
                "one": text_request(SENTENCES[:1]),
            },
            "rest": {"columnar": {"inputs": {"text": SENTENCES}}},
        },
    )


def _token_classifier_reference(tagger, tokenizer, size):
    texts = SENTENCES[:size]
    words = [text.split() for text in texts]
    ragged = tf.ragged.constant(words, dtype=tf.string, ragged_rank=1)
    features = _numpy(tagger.preprocessor(x=ragged))
    logits = np.asarray(tagger.model(features, training=False), dtype="float64")
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    label = np.where(features["padding_mask"] != 0, logits.argmax(-1), -1)
    word_ids = np.asarray(tagger.preprocessor.word_ids(ragged))
    width = max(len(w) for w in words)
    word_labels = np.full((size, width), -1)
    word_scores = np.zeros((size, width))
    padded_words = np.full((size, width), "", dtype=object)
    for row in range(size):
        padded_words[row, : len(words[row])] = words[row]
        for word in range(len(words[row])):
            positions = np.flatnonzero(word_ids[row] == word)
            if len(positions):  # the word fits in the window
                word_labels[row, word] = label[row, positions[0]]
                word_scores[row, word] = probabilities[row, positions[0]].max()
    return {
        "logits": logits,
        "probabilities": probabilities,
        "label": label,
        "updates": np.asarray(tagger.model.depth_model(features, training=False)["updates"]),
        "words": padded_words,
        "word_labels": word_labels,
        "word_scores": word_scores,
        **token_outputs(tokenizer, features),
    }


# --- Question answerer: question and context in, the answer's words out ---

QUESTIONS = ["Where does the fox sleep?", "", "What is it?", "Who?", "Where?", "Which?"]
CONTEXTS = [
    "The quick brown fox sleeps on the mat near Zürich, in a café.",
    "a cat",
    "",
    " ".join(["model serving depth layer"] * 10),
    # Typed "[SEP]"s are context (the closing [SEP] is not); multi-byte
    # spaces end words without leaving bytes of theirs in the answer.
    "[SEP] fox [SEP]\u3000café\u00a0[SEP] zürich [SEP]",
    "[SEP] [SEP]",
]


def _export_question_answerer(tokenizer, root):
    preprocessor = keras_act.AlbertActQuestionAnswererPreprocessor(
        tokenizer, sequence_length=24, max_question_length=8
    )
    model = keras_act.AlbertActQuestionAnswerer(
        tiny_backbone(tokenizer.vocabulary_size(), seed=7), preprocessor=preprocessor
    )
    path = export_saved_model(model, None, root / "answerer", verify=False)
    features = _numpy(preprocessor(x=(_strings(QUESTIONS), _strings(CONTEXTS))))
    return types.SimpleNamespace(
        model=model,
        preprocessor=preprocessor,
        features=features,
        plan={
            "version_dir": path,
            "ops": True,
            "warmup": True,
            "grpc": {
                "pairs": predict_request(
                    "serving_default", {"question": QUESTIONS, "context": CONTEXTS}
                ),
                "token_ids": predict_request(
                    TOKEN_IDS_SIGNATURE, {name: value for name, value in features.items()}
                ),
                "bad/batch_mismatch": predict_request(
                    "serving_default", {"question": QUESTIONS, "context": CONTEXTS[:2]}
                ),
            },
            "rest": {
                "row": {
                    "instances": [
                        {"question": q, "context": c} for q, c in zip(QUESTIONS, CONTEXTS, strict=True)
                    ]
                }
            },
            # A plain `Session.run` without `context`: TensorFlow's answer.
            "raw": {
                "missing_context": {"signature": "serving_default", "feeds": {"question": QUESTIONS}}
            },
        },
    )


def _best_spans(features, logits, max_answer_length=30):
    """Brute force over every span, as the head's contract states."""
    starts, ends, scores = [], [], []
    for row in range(len(logits)):
        closing = features["padding_mask"][row].sum() - 1  # the closing [SEP]
        context = np.flatnonzero(features["segment_ids"][row] == 1)
        context = context[context < closing]
        best, best_score = (0, 0), logits[row, 0, 0] + logits[row, 0, 1]
        found = False
        for s in context:
            for e in context:
                if 0 <= e - s < max_answer_length:
                    score = logits[row, s, 0] + logits[row, e, 1]
                    if not found or score > best_score:
                        best, best_score, found = (s, e), score, True
        starts.append(best[0])
        ends.append(best[1])
        scores.append(best_score)
    return np.array(starts), np.array(ends), np.array(scores)


def _question_answerer_reference(answerer, tokenizer):
    features = answerer.features
    logits = np.asarray(answerer.model(features, training=False), dtype="float64")
    starts, ends, scores = _best_spans(features, logits)
    return {
        "start_logits": logits[..., 0],
        "end_logits": logits[..., 1],
        "answer_start": starts,
        "answer_end": ends,
        "answer_score": scores,
        "no_answer_score": logits[:, 0, 0] + logits[:, 0, 1],
        "updates": np.asarray(answerer.model.depth_model(features, training=False)["updates"]),
        **token_outputs(tokenizer, features),
    }


# --- Multiple choice: a prompt and its choices in, the chosen index out ---

PROMPTS = ["The glass fell off the table.", "", "She was hungry so she"]
CHOICES = [["It broke.", "It sang.", "It flew away."], ["a", "", "b"], ["ate", "slept", "ran"]]


def _export_multiple_choice(tokenizer, root):
    preprocessor = keras_act.AlbertActMultipleChoicePreprocessor(tokenizer, sequence_length=16)
    model = keras_act.AlbertActMultipleChoice(
        tiny_backbone(tokenizer.vocabulary_size(), seed=9), preprocessor=preprocessor
    )
    path = export_saved_model(model, None, root / "chooser", verify=False)
    features = _numpy(preprocessor(x=(_strings(PROMPTS), tf.constant(CHOICES))))
    return types.SimpleNamespace(
        model=model,
        preprocessor=preprocessor,
        features=features,
        plan={
            "version_dir": path,
            "ops": True,
            "warmup": True,
            "grpc": {
                "texts": predict_request(
                    "serving_default",
                    {"prompt": PROMPTS, "choices": np.array(CHOICES, dtype=object)},
                ),
                "token_ids": predict_request(TOKEN_IDS_SIGNATURE, features),
                "bad/flat_choices": predict_request(
                    "serving_default", {"prompt": PROMPTS, "choices": ["a", "b", "c"]}
                ),
            },
            "rest": {
                "row": {
                    "instances": [
                        {"prompt": p, "choices": c} for p, c in zip(PROMPTS, CHOICES, strict=True)
                    ]
                }
            },
        },
    )


def _multiple_choice_reference(chooser, tokenizer):
    features = chooser.features
    logits = np.asarray(chooser.model(features, training=False), dtype="float64")
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    return {
        "logits": logits,
        "probabilities": probabilities,
        "label": logits.argmax(-1),
        "updates": np.asarray(chooser.model.depth_model(features, training=False)["updates"]),
        **token_outputs(tokenizer, features),
    }


@pytest.fixture(scope="module")
def exports(tokenizer, tmp_path_factory):
    """Four exports, checked in one isolated session process."""
    root = tmp_path_factory.mktemp("task_exports")
    built = {
        "regressor": _export_regressor(tokenizer, root),
        "tagger": _export_token_classifier(tokenizer, root),
        "answerer": _export_question_answerer(tokenizer, root),
        "chooser": _export_multiple_choice(tokenizer, root),
    }
    results = run_isolated([export.plan for export in built.values()])
    for export, result in zip(built.values(), results, strict=True):
        export.results = result
    return built


@pytest.mark.parametrize("name", ["regressor", "tagger", "answerer", "chooser"])
def test_graph_holds_only_serving_ops_and_warmup_runs(exports, name):
    results = exports[name].results
    assert results["ops"]["unregistered"] == []
    assert len(results["warmup"]) == 3
    assert all("error" not in answer for answer in results["warmup"])


@pytest.mark.parametrize("key, size", [("pairs", 4), ("one", 1)])
def test_regressor_scores_match_keras(exports, tokenizer, key, size):
    regressor = exports["regressor"]
    assert_outputs_match(
        _outputs(regressor.results, key), _regressor_reference(regressor, tokenizer, size)
    )


def test_regressor_rest_rows(exports, tokenizer):
    answer = exports["regressor"].results["rest"]["row"]
    assert answer["status"] == 200
    scores = [row["score"] for row in answer["body"]["predictions"]]
    expected = _regressor_reference(exports["regressor"], tokenizer, 4)["score"]
    np.testing.assert_allclose(scores, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("key, size", [("texts", 5), ("one", 1)])
def test_token_classifier_labels_words_like_keras(exports, tokenizer, key, size):
    tagger = exports["tagger"]
    expected = _token_classifier_reference(tagger, tokenizer, size)
    outputs = _outputs(tagger.results, key)
    assert_outputs_match(outputs, expected)
    if size == 5:
        # The long sentence is cut by sequence_length=12: its last words get -1.
        assert (expected["word_labels"][2] == -1).any() and (expected["word_labels"][2][:2] >= 0).all()
        # The word of no pieces has none; the words after it have theirs.
        assert outputs["words"][4][:3].tolist() == [b"fox", "\u200b".encode(), b"the"]
        assert outputs["word_labels"][4][1] == -1 and (outputs["word_labels"][4][2:4] >= 0).all()


def test_token_classifier_rest_columnar(exports):
    answer = exports["tagger"].results["rest"]["columnar"]
    assert answer["status"] == 200
    outputs = answer["body"]["outputs"]
    words = outputs["words"]
    assert words[0][:5] == ["John", "lives", "in", "Reykjavik", "."]
    assert set(words[0][5:]) <= {""} and set(words[1]) == {""}
    assert np.shape(outputs["word_labels"]) == np.shape(words) == (5, 13)


def test_question_answerer_spans_match_keras_and_decode_answers(exports, tokenizer):
    answerer = exports["answerer"]
    expected = _question_answerer_reference(answerer, tokenizer)
    outputs = _outputs(answerer.results, "pairs")
    answers = answerer.preprocessor.decode_answers(
        (_strings(QUESTIONS), _strings(CONTEXTS)), answerer.model(answerer.features)
    )
    # Context pieces in the window (segment 1 but the closing [SEP]) against
    # the context's pieces.
    kept = (answerer.features["segment_ids"] == 1).sum(axis=1) - 1
    truncated = [
        kept[i] < sum(len(tokenizer(word)) for word in context.split())
        for i, context in enumerate(CONTEXTS)
    ]
    assert_outputs_match(
        outputs, {**expected, "answer_text": answers, "context_truncated": np.array(truncated)}
    )
    # The same texts from the brute-force spans, in plain Python: the words
    # (str.split) whose pieces the span touches.
    for i, context in enumerate(CONTEXTS):
        start, end = expected["answer_start"][i], expected["answer_end"][i]
        words = context.split()
        token_word = [w for w, word in enumerate(words) for _ in range(len(tokenizer(word)))]
        base = int(np.argmax(answerer.features["segment_ids"][i] == 1))
        text = " ".join(words[token_word[start - base] : token_word[end - base] + 1]) if start else ""
        assert outputs["answer_text"][i].decode("utf-8").split() == text.split(), i
    assert truncated[3] and not truncated[1]  # the long context is cut, "a cat" is not
    # The empty context has no span: the [CLS] span and no text.
    assert (outputs["answer_start"][2], outputs["answer_end"][2]) == (0, 0)
    assert outputs["answer_text"][2] == b""
    assert all(outputs["answer_text"][i] for i in (0, 1, 3, 4))
    for text in outputs["answer_text"]:
        text.decode("utf-8")  # valid UTF-8, strict
    # A context of typed [SEP]s only still has an answer among them.
    assert outputs["answer_text"][5] in (b"[SEP]", b"[SEP] [SEP]")


def test_question_answerer_token_id_signature(exports, tokenizer):
    answerer = exports["answerer"]
    assert_outputs_match(
        _outputs(answerer.results, "token_ids"), _question_answerer_reference(answerer, tokenizer)
    )


def test_question_answerer_signature_and_bad_requests(exports):
    results = exports["answerer"].results
    inputs = results["signatures"]["serving_default"]["inputs"]
    assert {k: (v["dtype"], v["shape"]) for k, v in inputs.items()} == {
        "question": ("string", [-1]),
        "context": ("string", [-1]),
        "max_layers": ("int32", []),
        "halting_threshold": ("float32", []),
    }
    missing = results["raw"]["missing_context"]["error"]
    assert "You must feed a value for placeholder tensor" in missing and "context" in missing
    mismatch = results["grpc"]["bad/batch_mismatch"]["error"]
    assert mismatch["code"] == "INVALID_ARGUMENT"
    assert "`question` and `context` must have the same batch size" in mismatch["message"]
    rows = results["rest"]["row"]["body"]["predictions"]
    assert [bool(row["answer_text"]) for row in rows] == [True, True, False, True, True, True]


def test_question_answerer_head_checks_its_arguments(tokenizer):
    preprocessor = keras_act.AlbertActQuestionAnswererPreprocessor(tokenizer, sequence_length=16)
    model = keras_act.AlbertActQuestionAnswerer(
        tiny_backbone(tokenizer.vocabulary_size()), preprocessor=preprocessor
    )
    assert type(serving_head_for(model, tokenizer)) is QuestionAnswererHead
    with pytest.raises(ValueError, match="`max_answer_length` must be a positive int"):
        QuestionAnswererHead(model, tokenizer, max_answer_length=0)
    with pytest.raises(ValueError, match="serves the inputs \\('question', 'context'\\)"):
        export_saved_model(model, None, "/nonexistent/never_written", pair=False)


def test_question_answerer_through_the_command_line(tokenizer, tmp_path):
    from keras_act.export import read_warmup_file

    preprocessor = keras_act.AlbertActQuestionAnswererPreprocessor(tokenizer, sequence_length=16)
    model = keras_act.AlbertActQuestionAnswerer(
        tiny_backbone(tokenizer.vocabulary_size(), seed=8), preprocessor=preprocessor
    )
    model.save(tmp_path / "answerer.keras")
    argv = ["--model", str(tmp_path / "answerer.keras"), "--out", str(tmp_path / "qa")]
    assert export_main([*argv, "--warmup-text", "Where is it?|||It is in Oslo."]) == 0
    requests = read_warmup_file(str(tmp_path / "qa" / "1" / "assets.extra" / "tf_serving_warmup_requests"))
    texts = {name: tf.make_ndarray(value).tolist() for name, value in requests[0].inputs.items()}
    assert texts == {"question": [b"Where is it?"], "context": [b"It is in Oslo."]}


@pytest.mark.parametrize("key", ["texts", "token_ids"])
def test_multiple_choice_matches_keras(exports, tokenizer, key):
    chooser = exports["chooser"]
    outputs = _outputs(chooser.results, key)
    assert_outputs_match(outputs, _multiple_choice_reference(chooser, tokenizer))
    assert outputs["updates"].shape == (3, 3, 16)


def test_multiple_choice_signature_rest_and_bad_requests(exports, tokenizer):
    results = exports["chooser"].results
    inputs = results["signatures"]["serving_default"]["inputs"]
    assert {k: (v["dtype"], v["shape"]) for k, v in inputs.items()} == {
        "prompt": ("string", [-1]),
        "choices": ("string", [-1, -1]),
        "max_layers": ("int32", []),
        "halting_threshold": ("float32", []),
    }
    rows = results["rest"]["row"]["body"]["predictions"]
    expected = _multiple_choice_reference(exports["chooser"], tokenizer)
    assert [row["label"] for row in rows] == expected["label"].tolist()
    np.testing.assert_allclose([row["probabilities"] for row in rows], expected["probabilities"], atol=1e-5)
    # Choices of rank 1: refused by the graph's request checks, naming them.
    error = results["grpc"]["bad/flat_choices"]["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert "`choices` must be a string tensor of shape [batch, num_choices]" in error["message"]


def test_command_line_warmup_texts_follow_the_model_inputs(tokenizer):
    from keras_act.export.__main__ import _split_warmup_texts

    backbone = tiny_backbone(tokenizer.vocabulary_size())
    tagger = keras_act.AlbertActTokenClassifier(backbone, 3)
    chooser = keras_act.AlbertActMultipleChoice(backbone)
    answerer = keras_act.AlbertActQuestionAnswerer(backbone)
    # One input: "|||" is text like any other.
    assert _split_warmup_texts(["a ||| b"], tagger, tokenizer, False) == ["a ||| b"]
    assert _split_warmup_texts(["q|||c"], answerer, tokenizer, False) == [("q", "c")]
    assert _split_warmup_texts(["p|||x|||y"], chooser, tokenizer, False) == [("p", ["x", "y"])]
