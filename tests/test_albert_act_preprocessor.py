"""Tests of `AlbertActPreprocessor` / `AlbertActPairPreprocessor` against Hugging Face."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_act import AlbertActPairPreprocessor, AlbertActPreprocessor
from tests.helpers import (
    HARD_CASES,
)

KEYS = ("token_ids", "segment_ids", "padding_mask")


def reference(hf, first, second=None, sequence_length=16):
    """Hugging Face's `input_ids`, `token_type_ids`, `attention_mask` as arrays."""
    encoded = hf(
        first,
        second,
        truncation=True,
        max_length=sequence_length,
        padding="max_length",
        return_token_type_ids=True,
        return_attention_mask=True,
    )
    keys = ("input_ids", "token_type_ids", "attention_mask")
    return {ours: np.array(encoded[theirs]) for ours, theirs in zip(KEYS, keys, strict=True)}


def assert_same(x, expected, texts=None):
    for key in KEYS:
        assert x[key].dtype == tf.int32, key
        got = np.asarray(x[key])
        if not np.array_equal(got, expected[key]):
            rows = np.flatnonzero((got != expected[key]).reshape(len(got), -1).any(-1))
            where = [texts[i][:60] for i in rows[:3]] if texts is not None else rows[:3]
            raise AssertionError(f"{key} differs in {len(rows)} rows, e.g. {where}")


# === Known values ===


def test_known_values(tokenizer):
    single = AlbertActPreprocessor(tokenizer, sequence_length=8)
    x = single("Test sentence with [MASK].")
    assert x["token_ids"].numpy().tolist() == [2, 1289, 5123, 29, 4, 13, 9, 3]
    assert x["segment_ids"].numpy().tolist() == [0] * 8
    assert x["padding_mask"].numpy().tolist() == [1] * 8
    x = AlbertActPreprocessor(tokenizer, sequence_length=17)(
        ["a lump in the middle of the monkeys stirred and then fell quiet ."]
    )
    assert x["token_ids"].numpy().tolist() == [
        [2, 21, 12667, 19, 14, 772, 16, 14, 19777, 15272, 17, 94, 1139, 2401, 13, 9, 3]
    ]
    pair = AlbertActPairPreprocessor(tokenizer, sequence_length=8)
    x = pair(("Question?", "Answer"))
    assert x["token_ids"].numpy().tolist() == [2, 1301, 60, 3, 1623, 3, 0, 0]
    assert x["segment_ids"].numpy().tolist() == [0, 0, 0, 0, 1, 1, 0, 0]
    assert x["padding_mask"].numpy().tolist() == [1, 1, 1, 1, 1, 1, 0, 0]


# === Identical to Hugging Face ===


@pytest.mark.parametrize("sequence_length", [3, 8, 24, 128])
def test_single_sentences_match_hugging_face(tokenizer, hf, glue, sequence_length):
    texts = glue + HARD_CASES
    x = AlbertActPreprocessor(tokenizer, sequence_length=sequence_length)(texts)
    assert_same(x, reference(hf, texts, sequence_length=sequence_length), texts)


@pytest.mark.parametrize("sequence_length", [3, 4, 9, 16, 40, 128])
def test_sentence_pairs_match_hugging_face(tokenizer, hf, glue, sequence_length):
    # Pairs of every length ratio: each sentence with the next, and hard cases.
    first = glue[:-1] + HARD_CASES
    second = glue[1:] + HARD_CASES[::-1]
    x = AlbertActPairPreprocessor(tokenizer, sequence_length=sequence_length)((first, second))
    assert_same(x, reference(hf, first, second, sequence_length=sequence_length), first)


def test_in_tf_data_with_labels(tokenizer, hf, glue):
    texts, labels = glue[:500], np.arange(500) % 2
    single = AlbertActPreprocessor(tokenizer, sequence_length=32)
    dataset = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(64)
    batches = list(dataset.map(single, num_parallel_calls=tf.data.AUTOTUNE))
    x = {key: np.concatenate([b[0][key] for b in batches]) for key in KEYS}
    assert_same(x, reference(hf, texts, sequence_length=32), texts)
    assert np.concatenate([b[1] for b in batches]).tolist() == labels.tolist()

    pair = AlbertActPairPreprocessor(tokenizer, sequence_length=32)
    first, second = glue[500:700], glue[700:900]
    dataset = tf.data.Dataset.from_tensor_slices(
        ((first, second), labels[:200], labels[:200] * 0.5)
    )
    batches = list(dataset.batch(50).map(pair))
    x = {key: np.concatenate([b[0][key] for b in batches]) for key in KEYS}
    assert_same(x, reference(hf, first, second, sequence_length=32), first)
    assert np.concatenate([b[2] for b in batches]).tolist() == (labels[:200] * 0.5).tolist()
    # Unbatched elements `(a, b)`, as the pair preprocessor's docstring shows.
    dataset = tf.data.Dataset.from_tensor_slices((first[:10], second[:10]))
    rows = list(dataset.map(lambda a, b: pair((a, b))).batch(10))[0]
    assert_same(rows, reference(hf, first[:10], second[:10], sequence_length=32), first)


def test_unbatched_and_tf_function(tokenizer, hf):
    single = AlbertActPreprocessor(tokenizer, sequence_length=12)
    pair = AlbertActPairPreprocessor(tokenizer, sequence_length=12)
    text, other = "Crème brûlée with [MASK], 1,000,000 times!", "The <pad> stays a token."
    x = single(text)
    assert x["token_ids"].shape == (12,)
    assert_same({k: v[None] for k, v in x.items()}, reference(hf, [text], sequence_length=12))
    x = tf.function(lambda a, b: pair((a, b)))(tf.constant(text), tf.constant(other))
    assert_same({k: v[None] for k, v in x.items()}, reference(hf, [text], [other], 12))
    # A typed `<pad>` is id 0 but a real token: the mask says so, as Hugging Face's.
    x = single(["a <pad> b"])
    assert x["token_ids"].numpy()[0, :5].tolist() == [2, 21, 0, 334, 3]
    assert x["padding_mask"].numpy()[0, :6].tolist() == [1, 1, 1, 1, 1, 0]


# === Saving and export ===


def test_config_round_trip(tiny_tokenizer, tmp_path):
    for cls, x in [
        (AlbertActPreprocessor, ["Über [MASK] Straße", "The fox."]),
        (AlbertActPairPreprocessor, (["Über [MASK]", "x"], ["Straße", "The fox ran."])),
    ]:
        preprocessor = cls(tiny_tokenizer, sequence_length=10, name="pre")
        config = keras.saving.serialize_keras_object(preprocessor)
        assert config["registered_name"] == f"keras_act>{cls.__name__}"
        assert json.loads(json.dumps(config)) == config
        restored = keras.saving.deserialize_keras_object(config)
        preprocessor.tokenizer.save_assets(str(tmp_path))
        restored.tokenizer.load_assets(str(tmp_path))
        assert type(restored) is cls and restored.sequence_length == 10
        for key in KEYS:
            assert np.array_equal(restored(x)[key], preprocessor(x)[key])


LOADER = r"""
import json, sys
# Only TensorFlow and tensorflow-text: keras-act, keras-hub, sentencepiece and
# transformers cannot be imported in this process.
for name in ("keras_act", "keras_hub", "sentencepiece", "transformers"):
    sys.modules[name] = None
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the ops)

model = tf.saved_model.load(sys.argv[1])
texts = json.loads(sys.argv[2])
single = model.preprocess(tf.constant(texts))
pair = model.preprocess_pair(tf.constant(texts), tf.constant(texts[::-1]))
pieces = model.pieces(tf.constant(texts))
text = model.detokenize(single["token_ids"])
print(json.dumps({
    "dtypes": sorted({v.dtype.name for v in list(single.values()) + list(pair.values())}),
    "single": {k: v.numpy().tolist() for k, v in single.items()},
    "pair": {k: v.numpy().tolist() for k, v in pair.items()},
    "pieces": [[p.decode() for p in row if p] for row in pieces.numpy()],
    "text": [t.decode() for t in text.numpy()],
}))
"""


def test_exported_saved_model_needs_only_tensorflow_text(tokenizer, hf, glue, tmp_path):
    single = AlbertActPreprocessor(tokenizer, sequence_length=24)
    pair = AlbertActPairPreprocessor(tokenizer, sequence_length=24)
    strings = tf.TensorSpec([None], tf.string)
    archive = keras.export.ExportArchive()
    archive.track(single)
    archive.track(pair)
    archive.add_endpoint("preprocess", lambda t: single(t), input_signature=[strings])
    archive.add_endpoint(
        "preprocess_pair", lambda a, b: pair((a, b)), input_signature=[strings] * 2
    )
    archive.add_endpoint(
        "pieces",
        lambda t: tokenizer.tokenize_with_pieces(t)[0].to_tensor(""),
        input_signature=[strings],
    )
    archive.add_endpoint(
        "detokenize", tokenizer.detokenize, input_signature=[tf.TensorSpec([None, None], tf.int32)]
    )
    archive.write_out(str(tmp_path / "model"), verbose=False)

    texts = HARD_CASES[:-1] + glue[:40]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", LOADER, str(tmp_path / "model"), json.dumps(texts)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["dtypes"] == ["int32"]
    single_out = {k: np.array(v, "int32") for k, v in out["single"].items()}
    assert_same(single_out, reference(hf, texts, None, 24), texts)
    pair_out = {k: np.array(v, "int32") for k, v in out["pair"].items()}
    assert_same(pair_out, reference(hf, texts, texts[::-1], 24), texts)
    ids = [hf.encode(t, add_special_tokens=False) for t in texts]
    assert out["pieces"] == [hf.convert_ids_to_tokens(row) for row in ids]
    expected_text = [
        hf.decode(row, skip_special_tokens=True)
        for row in reference(hf, texts, None, 24)["token_ids"]
    ]
    assert out["text"] == expected_text


# === Bad input ===


def test_bad_arguments_and_inputs(tiny_tokenizer):
    with pytest.raises(ValueError, match="sequence_length=2"):
        AlbertActPreprocessor(tiny_tokenizer, sequence_length=2)
    with pytest.raises(ValueError, match="sequence_length='8'"):
        AlbertActPairPreprocessor(tiny_tokenizer, sequence_length="8")
    with pytest.raises(ValueError, match="needs an `AlbertActTokenizer`"):
        AlbertActPreprocessor("spiece.model", sequence_length=8)
    single = AlbertActPreprocessor(tiny_tokenizer, sequence_length=8)
    with pytest.raises(ValueError, match="use `AlbertActPairPreprocessor`"):
        single(x=("a", "b"))
    pair = AlbertActPairPreprocessor(tiny_tokenizer, sequence_length=8)
    with pytest.raises(ValueError, match=r"x=\(first, second\).*Received: str"):
        pair("just one sentence")
    with pytest.raises(ValueError, match="tokenizes strings"):
        single([1, 2])
    x = single(["", "   ", "\x00", "\xff"])  # empty and odd text: [CLS] [SEP] and padding
    assert x["token_ids"].numpy()[:2, :3].tolist() == [[2, 3, 0], [2, 3, 0]]
    assert x["padding_mask"].numpy()[:2].sum() == 4
