"""Shared pieces of the export tests: a tiny vocabulary, tiny models, Keras references."""

import random

import numpy as np
import sentencepiece as spm
import tensorflow as tf

import keras_act

SEQUENCE_LENGTH = 16
ATOL = 1e-5

# Texts of varied length: empty, one word, long (truncated), non-ASCII, a
# control character, typed special tokens.
VARIED_TEXTS = [
    "the quick brown fox",
    "",
    "a",
    " ".join(["depth layer token model serving"] * 12),
    "Zürich café naïve über 1,000 東京 🙂",
    "tab\there and\nnewline [SEP] [CLS]",
    "   ",
]


def train_tiny_sentencepiece(path, vocab_size=200, seed=0):
    """Trains an ALBERT-compatible SentencePiece model on generated sentences.

    `<pad>` 0, `<unk>` 1, `[CLS]` 2, `[SEP]` 3, `[MASK]` 4, as ALBERT's.
    """
    rng = random.Random(seed)
    words = (
        "the quick brown fox jumps over lazy dog a cat sat on mat depth layer token "
        "model serving text café naïve über 1,000 2,500 zürich capital france is"
    ).split()
    letters = "abcdefghijklmnoprstuvw"
    words += ["".join(rng.choice(letters) for _ in range(rng.randint(2, 7))) for _ in range(300)]
    sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(400)]
    spm.set_random_generator_seed(seed)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_prefix=str(path).removesuffix(".model"),
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        model_type="unigram",
        pad_id=0,
        unk_id=1,
        bos_id=-1,
        eos_id=-1,
        pad_piece="<pad>",
        unk_piece="<unk>",
        control_symbols=["[CLS]", "[SEP]", "[MASK]"],
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    return str(path)


def tiny_backbone(vocabulary_size, seed=1, **kwargs):
    """A small `AlbertActBackbone` (hidden 32, at most 6 layers)."""
    import keras

    keras.utils.set_random_seed(seed)
    config = dict(
        vocabulary_size=vocabulary_size,
        embedding_dim=16,
        hidden_dim=32,
        num_heads=4,
        intermediate_dim=64,
        max_layers=6,
        max_sequence_length=64,
    )
    config.update(kwargs)
    return keras_act.AlbertActBackbone(**config)


def preprocess(preprocessor, texts, text_pairs=None):
    """Eager preprocessing: a dict of int32 numpy features."""
    if text_pairs is None:
        features = preprocessor(tf.constant(_strings(texts)))
    else:
        features = preprocessor(x=(tf.constant(_strings(texts)), tf.constant(_strings(text_pairs))))
    return {name: np.asarray(value) for name, value in features.items()}


def _strings(texts):
    return np.array([t if isinstance(t, bytes) else t.encode("utf-8") for t in texts], dtype=object)


def token_outputs(tokenizer, features):
    """The token outputs every signature adds to its head's."""
    vocabulary = np.array(tokenizer.get_vocabulary(), dtype=object)
    return {
        "token_ids": features["token_ids"],
        "padding_mask": features["padding_mask"],
        "token_pieces": vocabulary[features["token_ids"]],
    }


def backbone_reference(backbone, tokenizer, features):
    """What the backbone's signatures must return, from the Keras model."""
    outputs = backbone(features, training=False)
    return {
        "sequence_output": np.asarray(outputs["sequence_output"]),
        "pooled_output": np.asarray(outputs["pooled_output"]),
        "updates": np.asarray(outputs["updates"]),
        **token_outputs(tokenizer, features),
    }


def masked_lm_reference(pretrainer, tokenizer, features, top_k):
    """What a masked-LM signature must return, from the Keras pretrainer."""
    token_ids, mask = features["token_ids"], features["padding_mask"]
    is_mask = (token_ids == tokenizer.mask_token_id) & (mask != 0)
    rows = [np.flatnonzero(row) for row in is_mask]
    count = max([len(row) for row in rows] + [0])
    positions = np.full((len(rows), count), -1, dtype="int32")
    for index, row in enumerate(rows):
        positions[index, : len(row)] = row
    outputs = pretrainer({**features, "mask_positions": np.maximum(positions, 0)}, training=False)
    logits = np.asarray(outputs["mlm_logits"], dtype="float64")
    scores = np.exp(logits - logits.max(-1, keepdims=True))
    scores /= scores.sum(-1, keepdims=True)
    order = np.argsort(-scores, axis=-1, kind="stable")[..., :top_k]
    top_scores = np.take_along_axis(scores, order, axis=-1)
    real = positions[..., None] >= 0
    vocabulary = np.array(tokenizer.get_vocabulary(), dtype=object)
    return {
        "mask_positions": positions,
        "top_k_ids": np.where(real, order, -1),
        "top_k_scores": np.where(real, top_scores, 0.0),
        "top_k_pieces": np.where(real, vocabulary[order], ""),
        "updates": np.asarray(outputs["updates"]),
        **token_outputs(tokenizer, features),
    }


def assert_outputs_match(actual, expected, atol=ATOL):
    """Same keys, dtypes kinds and shapes; floats within `atol`, the rest equal."""
    assert sorted(actual) == sorted(expected), (sorted(actual), sorted(expected))
    for name, value in expected.items():
        got = actual[name]
        assert got.shape == np.shape(value), (name, got.shape, np.shape(value))
        if got.dtype.kind == "f":
            np.testing.assert_allclose(got, value, rtol=0, atol=atol, err_msg=name)
        elif got.dtype == object:
            decoded = (
                np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(got) if got.size else got
            )
            np.testing.assert_array_equal(decoded, np.asarray(value, dtype=object), err_msg=name)
        else:
            np.testing.assert_array_equal(got, value, err_msg=name)
