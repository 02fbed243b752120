"""Per-example depth budgets through every kind of serving head.

The exported signature functions (`ServingFunctions`, exactly what the
export saves), called directly: a batch whose texts carry different
budgets, as the model server's batcher merges them, must give each text the
outputs it gets alone with its budget. The heads differ in what they
return: the masked LM's `[batch, P, k]` fills (P: the most masks of a row
in the batch), the token classifier's words, the question answerer's answer
texts, the multiple-choice `[batch, choices, seq]` inputs. One SavedModel
of the same functions is written and its ops compared with TF Text
2.12.1's (the budget adds core ops only).
"""

import numpy as np
import pytest
import tensorflow as tf

import keras_act
from keras_act.export.archive import build_export_archive, model_budget_defaults
from keras_act.export.heads import serving_head_for
from keras_act.export.signatures import ServingFunctions
from tests.helpers import tiny_backbone, train_tiny_sentencepiece
from tests.test_serving_op_set import non_core_ops, saved_model_ops, tf_text_2_12_1_ops

SEQUENCE_LENGTH = 16
# Outputs whose second dimension is the most of a row in the batch (the
# masked LM's per `[MASK]`, the token classifier's per word), and their
# padding.
PADDED_OUTPUTS = {
    "mask_positions": -1,
    "top_k_ids": -1,
    "top_k_pieces": b"",
    "top_k_scores": 0.0,
    "words": b"",
    "word_labels": -1,
    "word_scores": 0.0,
}
CAP = 3
# (max_layers, halting_threshold) per row.
BUDGETS = [(CAP, 0.99), (1, 0.99), (CAP, 0.2)]
TEXTS = ["the [MASK] sat on the [MASK] mat", "[MASK] is here", "no mask at all today"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    vocab = train_tiny_sentencepiece(tmp_path_factory.mktemp("vocab") / "tiny.model")
    return keras_act.AlbertActTokenizer(proto=vocab)


@pytest.fixture(scope="module")
def backbone(tokenizer):
    return tiny_backbone(tokenizer.vocabulary_size(), seed=5, max_layers=CAP)


def _model(kind, backbone, tokenizer):
    """`(model, preprocessor, inputs)` of a head kind; inputs: name -> 3 rows."""
    if kind == "masked_lm":
        preprocessor = keras_act.AlbertActPreprocessor(tokenizer, sequence_length=SEQUENCE_LENGTH)
        return keras_act.AlbertActPretrainer(backbone), preprocessor, {"text": TEXTS}
    if kind == "classifier_pair":
        preprocessor = keras_act.AlbertActTextClassifierPreprocessor(
            tokenizer, sequence_length=SEQUENCE_LENGTH
        )
        model = keras_act.AlbertActTextClassifier(backbone, 3, preprocessor=preprocessor)
        return model, preprocessor, {"text": TEXTS, "text_pair": TEXTS[::-1]}
    if kind == "token_classifier":
        preprocessor = keras_act.AlbertActTokenClassifierPreprocessor(
            tokenizer, sequence_length=SEQUENCE_LENGTH
        )
        model = keras_act.AlbertActTokenClassifier(backbone, 3, preprocessor=preprocessor)
        return model, preprocessor, {"text": TEXTS}
    if kind == "question_answerer":
        preprocessor = keras_act.AlbertActQuestionAnswererPreprocessor(
            tokenizer, sequence_length=SEQUENCE_LENGTH, max_question_length=4
        )
        model = keras_act.AlbertActQuestionAnswerer(backbone, preprocessor=preprocessor)
        return model, preprocessor, {"question": ["who sat", "where", "what"], "context": TEXTS}
    preprocessor = keras_act.AlbertActMultipleChoicePreprocessor(
        tokenizer, sequence_length=SEQUENCE_LENGTH
    )
    model = keras_act.AlbertActMultipleChoice(backbone, preprocessor=preprocessor)
    choices = [["a cat", "a dog"], ["here", ""], ["today", "never at all"]]
    return model, preprocessor, {"prompt": TEXTS, "choices": choices}


def _functions(model, preprocessor, tokenizer, pair):
    head = serving_head_for(model, tokenizer)
    return ServingFunctions(
        preprocessor,
        head,
        model.backbone.vocabulary_size,
        pair=pair,
        budget=model_budget_defaults(model),
    )


def _budget(rows):
    return {
        "max_layers": tf.constant([b[0] for b in rows], tf.int32),
        "halting_threshold": tf.constant([b[1] for b in rows], tf.float32),
    }


def _assert_rows_equal(batch, index, alone):
    assert sorted(batch) == sorted(alone)
    for name, value in alone.items():
        value = np.asarray(value)
        row = np.asarray(batch[name])[index : index + 1]
        if row.shape[1:2] != value.shape[1:2] and name in PADDED_OUTPUTS:
            # Padded to the most masks (words) of a row of the batch, as
            # any batching does: the extra entries are padding.
            extra = row[:, value.shape[1] :]
            assert np.all(extra == PADDED_OUTPUTS[name]), (name, extra)
            row = row[:, : value.shape[1]]
        if value.dtype.kind == "f":
            np.testing.assert_allclose(row, value, rtol=0, atol=1e-5, err_msg=name)
        else:
            np.testing.assert_array_equal(row, value, err_msg=name)


@pytest.mark.parametrize(
    "kind",
    ["masked_lm", "classifier_pair", "token_classifier", "question_answerer", "multiple_choice"],
)
def test_mixed_budgets_equal_each_row_alone(kind, backbone, tokenizer):
    model, preprocessor, inputs = _model(kind, backbone, tokenizer)
    functions = _functions(model, preprocessor, tokenizer, True if kind == "classifier_pair" else None)
    endpoint = functions.text_endpoint
    # Positional: the Python names of a two-input endpoint are text, text_pair.
    tensors = [tf.constant(value) for value in inputs.values()]
    batch = endpoint(*tensors, **_budget(BUDGETS))
    for index, budget in enumerate(BUDGETS):
        alone = endpoint(*[value[index : index + 1] for value in tensors], **_budget([budget]))
        _assert_rows_equal(batch, index, alone)
    mask = np.asarray(batch["padding_mask"]).astype(bool)
    assert np.asarray(batch["updates"])[1][mask[1]].max() == 1  # max_layers=1
    if kind == "masked_lm":
        # P = the most masks of a row (2), for every run of the batch.
        assert np.asarray(batch["mask_positions"]).shape == (3, 2)


def test_budget_ops_are_core_ops(backbone, tokenizer, tmp_path):
    # The per-example budget's ops (unique, segment min, while loop, ...)
    # load in a model server with TF Text 2.12.1.
    preprocessor = keras_act.AlbertActPreprocessor(tokenizer, sequence_length=SEQUENCE_LENGTH)
    preprocessor(["a text"])  # built, as the export's warm-up requests build it
    head = serving_head_for(backbone, tokenizer)
    archive = build_export_archive(
        backbone, preprocessor, head, budget=model_budget_defaults(backbone)
    )
    archive.write_out(str(tmp_path / "1"), verbose=False)
    ops = saved_model_ops(tmp_path / "1")
    assert {"Unique", "UnsortedSegmentMin"} <= ops
    assert set(non_core_ops(ops)) <= tf_text_2_12_1_ops()
