"""Fine-tuning tasks: shapes, ponder cost in the loss, saving, compile
defaults, and a few `fit()` steps on small learnable synthetic tasks.

Tiny backbones and a tiny SentencePiece vocabulary trained here: nothing
from ../shared is needed.
"""

import random
import tempfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras_hub.src.tests.test_case import TestCase

import keras_act
from keras_act.layers.ponder import PonderCost, ponder_cost
from keras_act.models.albert_act_question_answerer import (
    SpanCrossEntropy,
    span_cross_entropy,
    span_exact_match,
)
from keras_act.models.albert_act_text_regressor import StreamingPearsonCorrelation
from tests.helpers import (
    COLORS,
    FILLER,
    NEGATIVE,
    POSITIVE,
    sentiment_examples,
    train_tiny_vocabulary,
)
from tests.helpers import tiny_task_backbone as tiny_backbone

SEQUENCE_LENGTH = 24


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = train_tiny_vocabulary(tmp_path_factory.mktemp("task_vocab"))
    return keras_act.AlbertActTokenizer(proto=str(path))


@pytest.fixture
def backbone(tokenizer):
    keras.utils.set_random_seed(0)
    return tiny_backbone(tokenizer.vocabulary_size())


def text_classifier_preprocessor(tokenizer):
    return keras_act.AlbertActTextClassifierPreprocessor(tokenizer, SEQUENCE_LENGTH)


def fit_losses(task, dataset, epochs=3, learning_rate=3e-3):
    """Compiles with the defaults but a learning rate for a random model,
    fits on the raw-text `dataset` (its preprocessor mapped over it), and
    returns the loss of each epoch.

    One endless iterator serves all epochs: a new `tf.data` iterator over
    a tokenizer costs about a second of graph optimisation."""
    task.compile(optimizer=keras.optimizers.AdamW(learning_rate, global_clipnorm=1.0))
    steps = int(dataset.cardinality())
    history = task.fit(dataset.repeat(), epochs=epochs, steps_per_epoch=steps, verbose=0)
    return history.history["loss"], history.history


def assert_round_trip(task, features, tmp_path):
    """`.keras` save and load: the same class, config and outputs."""
    path = tmp_path / "task.keras"
    task.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(task)
    assert restored.get_config()["backbone"] == task.get_config()["backbone"]
    assert type(restored.preprocessor) is type(task.preprocessor)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(restored(features)), keras.ops.convert_to_numpy(task(features))
    )
    return restored


# === The ponder cost ===


def test_ponder_cost_is_the_mean_over_real_tokens():
    updates = np.array([[3.0, 2.0, 0.0], [1.0, 1.0, 1.0]], "float32")
    remainders = np.array([[0.5, 0.25, 0.0], [0.1, 0.2, 0.3]], "float32")
    mask = np.array([[1, 1, 0], [1, 1, 1]], "int32")
    np.testing.assert_allclose(
        ponder_cost(updates, remainders, mask).numpy(), [(3.5 + 2.25) / 2, 3.6 / 3], rtol=1e-6
    )
    # Per example over all its choices: [batch, choices, seq].
    np.testing.assert_allclose(
        ponder_cost(updates[None], remainders[None], mask[None]).numpy(),
        [(3.5 + 2.25 + 3.6) / 5],
        rtol=1e-6,
    )


def test_ponder_cost_layer_adds_its_loss_and_tracks_updates():
    layer = PonderCost(ponder_weight=0.5)
    x = tf.ones((2, 4))
    updates = tf.constant([[2.0, 4.0, 0.0], [1.0, 1.0, 1.0]])
    remainders = tf.constant([[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])
    mask = tf.constant([[1, 1, 0], [1, 1, 1]])
    out = layer(x, updates, remainders, mask)
    assert out is x or np.array_equal(out, x)
    # Mean over the batch of (3.5 / 1 example of 2 tokens, 1.0): 0.5 * 2.25.
    np.testing.assert_allclose([float(v) for v in layer.losses], [0.5 * (3.5 + 1.0) / 2])
    # Mean updates over all 5 real tokens: (6 + 3) / 5.
    np.testing.assert_allclose(float(layer.mean_updates.result()), 9 / 5, rtol=1e-6)
    with pytest.raises(ValueError, match="ponder_weight"):
        PonderCost(ponder_weight=-1.0)


def test_pretrainer_ponder_cost_is_the_shared_ponder_cost(tokenizer):
    # The pre-training loss uses `ponder_cost` (the fine-tuning tasks' too):
    # the same numbers as the mean of updates + remainders over real tokens.
    backbone = tiny_backbone(tokenizer.vocabulary_size(), max_layers=2)
    pretrainer = keras_act.AlbertActPretrainer(backbone, ponder_weight=0.25)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "int32")
    features = {
        "token_ids": np.array([[2, 9, 3, 0, 0], [2, 7, 8, 11, 3]], "int32"),
        "segment_ids": np.zeros((2, 5), "int32"),
        "padding_mask": mask,
        "mask_positions": np.array([[1], [2]], "int32"),
    }
    targets = {
        "mask_ids": np.array([[9], [8]], "int32"),
        "mask_weights": np.ones((2, 1), "float32"),
        "sop_label": np.array([0, 1], "int32"),
    }
    outputs = pretrainer(features)
    terms = pretrainer.pretraining_losses(features, targets, outputs)
    depth = (outputs["updates"].numpy() + outputs["remainders"].numpy()) * mask
    expected = depth.sum(axis=1) / mask.sum(axis=1)
    np.testing.assert_allclose(terms["ponder_cost"].numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(
        terms["ponder_cost"].numpy(),
        ponder_cost(outputs["updates"], outputs["remainders"], mask).numpy(),
        rtol=0,
    )
    np.testing.assert_allclose(
        terms["loss"].numpy(),
        (terms["mlm_loss"] + terms["sop_loss"] + 0.25 * terms["ponder_cost"]).numpy(),
        rtol=1e-6,
    )


# === Text classifier ===


def test_text_classifier_preprocessor_packs_one_or_two_texts(tokenizer):
    preprocessor = text_classifier_preprocessor(tokenizer)
    single = preprocessor(["a good movie", "bad"])
    assert single["token_ids"].shape == (2, SEQUENCE_LENGTH)
    assert not single["segment_ids"].numpy().any()
    expected = keras_act.AlbertActPreprocessor(tokenizer, SEQUENCE_LENGTH)(["a good movie", "bad"])
    for key in expected:
        np.testing.assert_array_equal(single[key], expected[key])
    pairs = preprocessor(x=(["a good movie", "it"], ["bad", "then the owl ran"]))
    expected = keras_act.AlbertActPairPreprocessor(tokenizer, SEQUENCE_LENGTH)(
        (["a good movie", "it"], ["bad", "then the owl ran"])
    )
    for key in expected:
        np.testing.assert_array_equal(pairs[key], expected[key])
    # Labels pass through, as `(x, y)` dataset elements.
    x, y = preprocessor(["good"], [1])
    assert x["token_ids"].shape == (1, SEQUENCE_LENGTH) and y.numpy().tolist() == [1]


def test_text_classifier_outputs_logits_and_adds_the_ponder_cost(tokenizer, backbone):
    classifier = keras_act.AlbertActTextClassifier(
        backbone, num_classes=3, preprocessor=text_classifier_preprocessor(tokenizer), dropout=0.0
    )
    assert classifier.ponder_weight == backbone.ponder_weight
    features = classifier.preprocessor(["a good movie", "the owl was bad", "it"])
    logits = classifier(features)
    assert logits.shape == (3, 3)
    depth = classifier.depth_model(features)
    np.testing.assert_allclose(depth["logits"], logits, rtol=1e-6)
    assert depth["updates"].shape == (3, SEQUENCE_LENGTH)
    mask = features["padding_mask"].numpy().astype(bool)
    assert (depth["updates"].numpy()[~mask] == 0).all()
    assert (depth["updates"].numpy()[mask] >= 1).all()

    labels = tf.constant([0, 1, 2])
    loss = classifier.compute_loss(features, labels, classifier(features), training=False)
    cross_entropy = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels, depth["logits"])
    )
    cost = tf.reduce_mean(ponder_cost(depth["updates"], depth["remainders"], mask))
    np.testing.assert_allclose(
        float(loss), float(cross_entropy + backbone.ponder_weight * cost), rtol=1e-5
    )
    # The per-example terms of custom loops give the same objective.
    terms = classifier.finetuning_losses(features, labels, depth)
    np.testing.assert_allclose(float(tf.reduce_mean(terms["loss"])), float(loss), rtol=1e-5)
    np.testing.assert_allclose(
        terms["ponder_cost"], ponder_cost(depth["updates"], depth["remainders"], mask), rtol=1e-6
    )
    np.testing.assert_array_equal(
        terms["correct"], (np.argmax(depth["logits"], -1) == labels.numpy()).astype("float32")
    )
    np.testing.assert_allclose(terms["tokens"], mask.sum(1))


def test_ponder_weight_zero_leaves_the_task_loss(tokenizer, backbone):
    classifier = keras_act.AlbertActTextClassifier(backbone, 2, ponder_weight=0.0, dropout=0.0)
    features = text_classifier_preprocessor(tokenizer)(["a good movie", "bad"])
    labels = tf.constant([1, 0])
    loss = classifier.compute_loss(features, labels, classifier(features), training=False)
    expected = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels, classifier(features))
    )
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-6)


def test_text_classifier_compile_defaults(backbone):
    classifier = keras_act.AlbertActTextClassifier(backbone, 2)
    optimizer = classifier.optimizer
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert float(optimizer.learning_rate) == pytest.approx(2e-5)
    assert optimizer.weight_decay == pytest.approx(0.01)
    assert optimizer.global_clipnorm == pytest.approx(1.0)
    assert isinstance(classifier.loss, keras.losses.SparseCategoricalCrossentropy)
    assert classifier.loss.get_config()["from_logits"] is True
    softmax = keras_act.AlbertActTextClassifier(backbone, 2, activation="softmax")
    assert softmax.loss.get_config()["from_logits"] is False


def test_text_classifier_fits_raw_text_and_round_trips(tokenizer, backbone, tmp_path):
    preprocessor = text_classifier_preprocessor(tokenizer)
    classifier = keras_act.AlbertActTextClassifier(backbone, 2, preprocessor=preprocessor)
    sentences, labels = sentiment_examples(96, seed=1)
    dataset = tf.data.Dataset.from_tensor_slices((sentences, labels)).batch(16)
    losses, history = fit_losses(classifier, dataset, epochs=4)
    assert losses[-1] < 0.7 * losses[0], losses
    assert set(history) >= {"accuracy", "mean_updates"}
    assert 1.0 <= history["mean_updates"][-1] <= backbone.max_layers
    # `predict` on raw strings goes through the preprocessor.
    assert classifier.predict(["a superb film", "an awful film"], verbose=0).shape == (2, 2)
    assert_round_trip(classifier, preprocessor(sentences[:4]), tmp_path)


def test_text_classifier_rejects_bad_arguments(backbone):
    with pytest.raises(ValueError, match="num_classes"):
        keras_act.AlbertActTextClassifier(backbone, num_classes=0)
    with pytest.raises(ValueError, match="AlbertActBackbone"):
        keras_act.AlbertActTextClassifier(keras.Sequential([keras.layers.Dense(2)]), 2)


def test_preprocessor_longer_than_the_backbone_is_shortened(tokenizer, backbone):
    preprocessor = keras_act.AlbertActTextClassifierPreprocessor(tokenizer)  # 512
    with pytest.warns(UserWarning, match="max_sequence_length=64"):
        keras_act.AlbertActTextClassifier(backbone, 2, preprocessor=preprocessor)
    assert preprocessor(["good"])["token_ids"].shape == (1, 64)


def test_text_classifier_from_a_preset_folder(tokenizer, backbone, tmp_path):
    backbone.save_to_preset(tmp_path)
    tokenizer.save_to_preset(tmp_path)
    classifier = keras_act.AlbertActTextClassifier.from_preset(str(tmp_path), num_classes=4)
    assert isinstance(classifier.preprocessor, keras_act.AlbertActTextClassifierPreprocessor)
    features = text_classifier_preprocessor(tokenizer)(["good"])
    np.testing.assert_allclose(
        classifier.backbone(features)["pooled_output"], backbone(features)["pooled_output"]
    )
    assert classifier.predict(["a good movie"], verbose=0).shape == (1, 4)


# === Text regressor ===


def test_streaming_pearson_is_the_correlation_of_all_batches():
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = 0.5 * x + rng.normal(size=40)
    metric = StreamingPearsonCorrelation()
    for start in range(0, 40, 8):
        metric.update_state(y[start : start + 8], x[start : start + 8, None])
    np.testing.assert_allclose(float(metric.result()), np.corrcoef(x, y)[0, 1], rtol=1e-4)


def test_text_regressor_fits_pairs_and_round_trips(tokenizer, backbone, tmp_path):
    preprocessor = text_classifier_preprocessor(tokenizer)
    regressor = keras_act.AlbertActTextRegressor(backbone, preprocessor=preprocessor)
    assert isinstance(regressor.loss, keras.losses.MeanSquaredError)
    firsts, labels = sentiment_examples(96, seed=2)
    rng = random.Random(3)
    seconds = [" ".join(rng.choices(FILLER, k=3)) for _ in firsts]
    # Centred scores: predicting their mean does not lower the loss.
    scores = np.asarray(labels, "float32") * 2.0 - 1.0
    dataset = tf.data.Dataset.from_tensor_slices(((firsts, seconds), scores)).batch(16)
    losses, history = fit_losses(regressor, dataset, epochs=5)
    assert losses[-1] < 0.6 * losses[0], losses
    assert "pearson" in history and "mean_updates" in history
    features = preprocessor(x=(firsts[:3], seconds[:3]))
    assert regressor(features).shape == (3, 1)
    terms = regressor.finetuning_losses(features, scores[:3], regressor.depth_model(features))
    np.testing.assert_allclose(
        terms["task_loss"], (regressor(features).numpy()[:, 0] - scores[:3]) ** 2, rtol=1e-5
    )
    assert_round_trip(regressor, features, tmp_path)


# === Token classifier ===


def test_token_classifier_preprocessor_labels_first_pieces(tokenizer):
    preprocessor = keras_act.AlbertActTokenClassifierPreprocessor(tokenizer, 12)
    words = [["the", "lovely", "owl"], ["superb"]]
    x, y, sample_weight = preprocessor(words, [[1, 2, 3], [4]])
    pieces = [tokenizer(w).numpy().tolist() for w in words[0]]
    expected_ids = [tokenizer.cls_token_id] + sum(pieces, []) + [tokenizer.sep_token_id]
    assert len(sum(pieces, [])) > 3  # "lovely" is more than one piece here.
    np.testing.assert_array_equal(x["token_ids"][0, : len(expected_ids)], expected_ids)
    expected_labels = [-100]
    for label, word_pieces in zip([1, 2, 3], pieces, strict=True):
        expected_labels += [label] + [-100] * (len(word_pieces) - 1)
    expected_labels += [-100] * (12 - len(expected_labels))
    np.testing.assert_array_equal(y[0], expected_labels)
    np.testing.assert_array_equal(sample_weight[0], np.array(expected_labels) != -100)
    # The word of each token, to read predictions back per word.
    word_ids = preprocessor.word_ids(words).numpy()
    expected_words = [-1] + sum(([i] * len(p) for i, p in enumerate(pieces)), []) + [-1]
    np.testing.assert_array_equal(word_ids[0, : len(expected_words)], expected_words)
    assert (word_ids[0, len(expected_words) :] == -1).all()
    # Both at once, tokenized once: the same features and word ids.
    ragged = tf.ragged.constant(words)
    features, both_word_ids = preprocessor.features_and_word_ids(ragged)
    for name in x:
        np.testing.assert_array_equal(features[name], x[name])
    np.testing.assert_array_equal(both_word_ids, word_ids)
    with pytest.raises(ValueError, match="takes a batch"):
        preprocessor.features_and_word_ids(["one", "example"])
    # Truncation keeps [CLS] ... [SEP] within the length; one example of words.
    long_x, long_y, _ = preprocessor(["the"] * 20, [7] * 20)
    assert long_x["token_ids"].shape == (12,)
    assert long_x["token_ids"][-1] == tokenizer.sep_token_id
    assert long_y.numpy().tolist() == [-100] + [7] * 10 + [-100]
    with pytest.raises(tf.errors.InvalidArgumentError, match="one label per word"):
        preprocessor(words, [[1, 2], [4]])


def tagging_examples(count, seed=0):
    """Words labelled 1 (positive), 2 (negative), 3 (color) or 0."""
    rng = random.Random(seed)
    vocabulary = FILLER + list(POSITIVE + NEGATIVE + COLORS)
    sentences = [[rng.choice(vocabulary) for _ in range(rng.randint(2, 6))] for _ in range(count)]

    def label(word):
        return 1 if word in POSITIVE else 2 if word in NEGATIVE else 3 if word in COLORS else 0

    return sentences, [[label(w) for w in s] for s in sentences]


def test_token_classifier_fits_and_round_trips(tokenizer, backbone, tmp_path):
    preprocessor = keras_act.AlbertActTokenClassifierPreprocessor(tokenizer, SEQUENCE_LENGTH)
    tagger = keras_act.AlbertActTokenClassifier(backbone, 4, preprocessor=preprocessor)
    sentences, labels = tagging_examples(96, seed=4)
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.ragged.constant(sentences), tf.ragged.constant(labels))
    ).batch(16)
    losses, history = fit_losses(tagger, dataset, epochs=4)
    assert losses[-1] < 0.75 * losses[0], losses
    assert "accuracy" in history and "mean_updates" in history
    x, y, sample_weight = preprocessor(sentences[:4], labels[:4])
    logits = tagger(x)
    assert logits.shape == (4, SEQUENCE_LENGTH, 4)
    # The default loss: cross-entropy over the labelled tokens only.
    expected = tf.reduce_sum(
        tf.nn.sparse_softmax_cross_entropy_with_logits(tf.maximum(y, 0), logits) * sample_weight
    ) / tf.reduce_sum(sample_weight)
    np.testing.assert_allclose(
        float(tagger.loss(y, logits, sample_weight)), float(expected), rtol=1e-5
    )
    assert_round_trip(tagger, x, tmp_path)


# === Question answering ===


def test_question_answerer_preprocessor_maps_character_spans(tokenizer):
    preprocessor = keras_act.AlbertActQuestionAnswererPreprocessor(
        tokenizer, 24, max_question_length=4
    )
    questions = ["which color ?", "what ?", "which color ?", "which ?"]
    contexts = [
        "the fox saw a yellow, lovely owl",
        "the fox saw the owl",
        "the owl " + "ran " * 30 + "blue",
        "été the café is red",
    ]
    starts = [contexts[0].index("yellow"), -1, contexts[2].index("blue"), contexts[3].index("red")]
    texts = ["yellow", "", "blue", "red"]
    x, y = preprocessor(x=(questions, contexts), y={"answer_start": starts, "answer_text": texts})
    features, layout = preprocessor.features_and_layout(tf.constant(questions), tf.constant(contexts))
    for name in x:
        np.testing.assert_array_equal(features[name], x[name])
    assert layout["word_starts"].to_list()[3] == [0, 6, 10, 16, 19]  # bytes: "été" is 5
    ids = x["token_ids"].numpy()
    segments = x["segment_ids"].numpy()
    # The question is cut to `max_question_length` pieces.
    assert len(tokenizer("which color ?").numpy()) > 4
    question_length = 4
    np.testing.assert_array_equal(ids[0, 1:5], tokenizer("which color ?").numpy()[:4])
    assert (
        ids[0, 0] == tokenizer.cls_token_id
        and ids[0, question_length + 1] == tokenizer.sep_token_id
    )
    assert (segments[0, : question_length + 2] == 0).all() and segments[0, question_length + 2] == 1
    span = y.numpy()
    # "yellow," is one word; the span is tightened to the pieces of "yellow".
    start, end = span[0]
    np.testing.assert_array_equal(ids[0, start : end + 1], tokenizer("yellow").numpy())
    assert ids[0, end + 1] != tokenizer("yellow").numpy()[-1] or end + 1 >= 24
    assert span[1].tolist() == [0, 0]  # No answer.
    assert span[2].tolist() == [0, 0]  # Cut off by the window.
    # Character offsets count characters, not bytes ("été", "café").
    start, end = span[3]
    np.testing.assert_array_equal(ids[3, start : end + 1], tokenizer("red").numpy())
    # Decoding the labelled spans gives the answers back (whole words).
    one_hot = np.full((4, 24, 2), -10.0)
    for i, (s, e) in enumerate(span):
        one_hot[i, s, 0] = one_hot[i, e, 1] = 10.0
    answers = preprocessor.decode_answers((questions, contexts), one_hot)
    assert answers[0] == "yellow," and answers[3] == "red"


def qa_examples(count, seed=0):
    rng = random.Random(seed)
    questions, contexts, starts, texts = [], [], [], []
    for _ in range(count):
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 8))]
        color = rng.choice(COLORS)
        position = rng.randint(0, len(words))
        words.insert(position, color)
        context = " ".join(words)
        questions.append("which color ?")
        contexts.append(context)
        starts.append(len(" ".join(words[:position])) + (1 if position else 0))
        texts.append(color)
    return questions, contexts, starts, texts


def test_question_answerer_fits_and_round_trips(tokenizer, backbone, tmp_path):
    preprocessor = keras_act.AlbertActQuestionAnswererPreprocessor(tokenizer, SEQUENCE_LENGTH)
    answerer = keras_act.AlbertActQuestionAnswerer(backbone, preprocessor=preprocessor)
    assert isinstance(answerer.loss, SpanCrossEntropy)
    questions, contexts, starts, texts = qa_examples(96, seed=5)
    dataset = tf.data.Dataset.from_tensor_slices(
        ((questions, contexts), {"answer_start": starts, "answer_text": texts})
    ).batch(16)
    losses, history = fit_losses(answerer, dataset, epochs=4)
    assert losses[-1] < 0.7 * losses[0], losses
    assert "exact_match" in history and "mean_updates" in history
    x, y = preprocessor(
        x=(questions[:4], contexts[:4]), y={"answer_start": starts[:4], "answer_text": texts[:4]}
    )
    logits = answerer(x)
    assert logits.shape == (4, SEQUENCE_LENGTH, 2) and logits.dtype == "float32"
    assert (logits.numpy()[~x["padding_mask"].numpy().astype(bool)] <= -1e4 + 1).all()
    np.testing.assert_allclose(
        span_cross_entropy(y, logits),
        (
            tf.nn.sparse_softmax_cross_entropy_with_logits(y[:, 0], logits[:, :, 0])
            + tf.nn.sparse_softmax_cross_entropy_with_logits(y[:, 1], logits[:, :, 1])
        )
        / 2,
        rtol=1e-6,
    )
    assert set(span_exact_match(y, logits).numpy().tolist()) <= {0.0, 1.0}
    assert_round_trip(answerer, x, tmp_path)


# === Multiple choice ===


def test_multiple_choice_preprocessor_packs_each_choice_with_its_prompt(tokenizer):
    preprocessor = keras_act.AlbertActMultipleChoicePreprocessor(tokenizer, 16)
    prompts = ["the owl saw", "the fox ran"]
    choices = [["a red river", "the house", "then"], ["it was good", "bad", "later"]]
    x, y = preprocessor(x=(prompts, choices), y=[0, 2])
    assert x["token_ids"].shape == (2, 3, 16) and y == [0, 2]
    pairs = keras_act.AlbertActPairPreprocessor(tokenizer, 16)
    for i in range(2):
        expected = pairs(([prompts[i]] * 3, choices[i]))
        for key in expected:
            np.testing.assert_array_equal(x[key][i], expected[key])
    single = preprocessor((prompts[0], choices[0]))
    assert single["token_ids"].shape == (3, 16)


def choice_examples(count, seed=0):
    """The right choice is the one with a positive word."""
    rng = random.Random(seed)
    prompts, choices, labels = [], [], []
    for _ in range(count):
        options = [" ".join(rng.choices(NEGATIVE, k=3)) for _ in range(3)]
        right = rng.randint(0, 2)
        options[right] = " ".join(rng.choices(POSITIVE, k=3))
        prompts.append(" ".join(rng.choice(FILLER) for _ in range(3)))
        choices.append(options)
        labels.append(right)
    return prompts, choices, labels


def test_multiple_choice_fits_and_round_trips(tokenizer, backbone, tmp_path):
    preprocessor = keras_act.AlbertActMultipleChoicePreprocessor(tokenizer, 16)
    chooser = keras_act.AlbertActMultipleChoice(backbone, preprocessor=preprocessor)
    prompts, choices, labels = choice_examples(96, seed=6)
    dataset = tf.data.Dataset.from_tensor_slices(((prompts, choices), labels)).batch(16)
    losses, history = fit_losses(chooser, dataset, epochs=4)
    assert losses[-1] < 0.8 * losses[0], losses
    assert "accuracy" in history and "mean_updates" in history
    x = preprocessor(x=(prompts[:4], choices[:4]))
    assert chooser(x).shape == (4, 3)
    depth = chooser.depth_model(x)
    assert depth["updates"].shape == (4, 3, 16)
    # Each choice is scored on its own: the score of a choice does not
    # depend on the others.
    alone = chooser({k: v[:, :1] for k, v in x.items()})
    np.testing.assert_allclose(alone[:, 0], chooser(x)[:, 0], rtol=1e-5, atol=1e-6)
    terms = chooser.finetuning_losses(x, np.array(labels[:4]), depth)
    np.testing.assert_allclose(
        terms["ponder_cost"], ponder_cost(depth["updates"], depth["remainders"], x["padding_mask"])
    )
    assert_round_trip(chooser, x, tmp_path)


def test_tasks_under_mixed_precision(tokenizer):
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        backbone = tiny_backbone(tokenizer.vocabulary_size())
        classifier = keras_act.AlbertActTextClassifier(backbone, 2, dropout=0.0)
        answerer = keras_act.AlbertActQuestionAnswerer(backbone, dropout=0.0)
    finally:
        keras.config.set_dtype_policy("float32")
    features = text_classifier_preprocessor(tokenizer)(["a good movie", "bad"])
    logits = classifier(features)
    assert logits.dtype == "bfloat16"
    loss = classifier.compute_loss(features, tf.constant([1, 0]), logits, training=False)
    assert loss.dtype == "float32" and np.isfinite(float(loss))
    terms = classifier.finetuning_losses(
        features, tf.constant([1, 0]), classifier.depth_model(features)
    )
    assert all(value.dtype == "float32" for value in terms.values())
    # Span logits stay float32, padding at -1e4 (beyond bfloat16's precision).
    span_logits = answerer(features)
    assert span_logits.dtype == "float32"
    assert (span_logits.numpy()[features["padding_mask"].numpy() == 0] == -1e4).all()


# === keras-hub's own test harness ===


@pytest.mark.large  # Five tasks, each fitted and predicted three ways: minutes on CPU.
class TaskHarnessTest(TestCase):
    """`run_task_test` on each task: serialization, predict and fit on raw
    data, on a `tf.data` pipeline and with split preprocessing, and the
    error of `fit()` without `compile()`."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.folder = tempfile.TemporaryDirectory()
        path = train_tiny_vocabulary(Path(cls.folder.name))
        cls.tokenizer = keras_act.AlbertActTokenizer(proto=str(path))

    @classmethod
    def tearDownClass(cls):
        cls.folder.cleanup()
        super().tearDownClass()

    def harness_backbone(self):
        keras.utils.set_random_seed(0)
        return tiny_backbone(
            self.tokenizer.vocabulary_size(),
            max_layers=2,
            embedding_dim=4,
            hidden_dim=8,
            num_heads=2,
            intermediate_dim=16,
            max_sequence_length=16,
        )

    def test_text_classifier_harness(self):
        preprocessor = keras_act.AlbertActTextClassifierPreprocessor(self.tokenizer, 16)
        self.run_task_test(
            cls=keras_act.AlbertActTextClassifier,
            init_kwargs=dict(
                backbone=self.harness_backbone(), num_classes=2, preprocessor=preprocessor
            ),
            train_data=(["a good film", "a dull film"], [1, 0]),
            expected_output_shape=(2, 2),
        )

    def test_text_regressor_harness(self):
        preprocessor = keras_act.AlbertActTextClassifierPreprocessor(self.tokenizer, 16)
        self.run_task_test(
            cls=keras_act.AlbertActTextRegressor,
            init_kwargs=dict(backbone=self.harness_backbone(), preprocessor=preprocessor),
            train_data=((["a red car", "a film"], ["a blue car", "the sea"]), [4.5, 0.5]),
            expected_output_shape=(2, 1),
        )

    def test_token_classifier_harness(self):
        preprocessor = keras_act.AlbertActTokenClassifierPreprocessor(self.tokenizer, 16)
        # Sentences of equal length: `tf.data` slices the harness's lists.
        self.run_task_test(
            cls=keras_act.AlbertActTokenClassifier,
            init_kwargs=dict(
                backbone=self.harness_backbone(), num_classes=4, preprocessor=preprocessor
            ),
            train_data=([["a", "good", "film"], ["the", "red", "sea"]], [[0, 1, 0], [0, 3, 0]]),
            expected_output_shape=(2, 16, 4),
        )

    def test_question_answerer_harness(self):
        preprocessor = keras_act.AlbertActQuestionAnswererPreprocessor(self.tokenizer, 16)
        questions, contexts, starts, texts = qa_examples(2, seed=1)
        self.run_task_test(
            cls=keras_act.AlbertActQuestionAnswerer,
            init_kwargs=dict(backbone=self.harness_backbone(), preprocessor=preprocessor),
            train_data=((questions, contexts), {"answer_start": starts, "answer_text": texts}),
            expected_output_shape=(2, 16, 2),
        )

    def test_multiple_choice_harness(self):
        preprocessor = keras_act.AlbertActMultipleChoicePreprocessor(self.tokenizer, 8)
        prompts, choices, labels = choice_examples(2, seed=1)
        self.run_task_test(
            cls=keras_act.AlbertActMultipleChoice,
            init_kwargs=dict(backbone=self.harness_backbone(), preprocessor=preprocessor),
            train_data=((prompts, choices), labels),
            expected_output_shape=(2, 3),
        )
