"""`python -m keras_act.export`: presets and `.keras` files to SavedModel versions."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import keras_act
from keras_act.export import TEXT_SIGNATURE, read_warmup_file
from keras_act.export.__main__ import main as export_main
from keras_act.export.loading import load_for_export
from keras_act.tokenizers import AlbertActPreprocessor, AlbertActTokenizer
from tests.export_helpers import preprocess, tiny_backbone, train_tiny_sentencepiece

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A run folder as training/pretrain.py leaves it: preset + pretrainer.keras."""
    root = tmp_path_factory.mktemp("run")
    vocab = train_tiny_sentencepiece(root / "tiny.model")
    tokenizer = AlbertActTokenizer(proto=vocab)
    backbone = tiny_backbone(tokenizer.vocabulary_size(), seed=7)
    preset = root / "preset"
    backbone.save_to_preset(str(preset))
    tokenizer.save_to_preset(str(preset))
    pretrainer = keras_act.AlbertActPretrainer(backbone)
    pretrainer.save(root / "pretrainer.keras")
    return root, vocab, tokenizer, backbone


def test_preset_directory_loads_backbone_and_tokenizer(saved):
    root, _, tokenizer, backbone = saved
    model, preprocessing = load_for_export(root / "preset")
    assert isinstance(model, keras_act.AlbertActBackbone)
    assert isinstance(preprocessing, AlbertActTokenizer)
    assert preprocessing.get_vocabulary() == tokenizer.get_vocabulary()
    np.testing.assert_array_equal(
        model.token_embedding.embeddings.numpy(), backbone.token_embedding.embeddings.numpy()
    )


def test_preset_with_preprocessor_keeps_its_sequence_length(saved, tmp_path):
    _, _, tokenizer, backbone = saved
    backbone.save_to_preset(str(tmp_path))
    AlbertActPreprocessor(tokenizer, sequence_length=12).save_to_preset(str(tmp_path))
    _, preprocessing = load_for_export(tmp_path)
    assert isinstance(preprocessing, AlbertActPreprocessor)
    assert preprocessing.sequence_length == 12


def test_keras_file_without_preprocessor_needs_vocab(saved):
    root, vocab, tokenizer, _ = saved
    with pytest.raises(ValueError, match="give one with --vocab"):
        load_for_export(root / "pretrainer.keras")
    model, preprocessing = load_for_export(root / "pretrainer.keras", vocab=vocab)
    assert isinstance(model, keras_act.AlbertActPretrainer)
    assert isinstance(preprocessing, AlbertActTokenizer)
    _, from_preset = load_for_export(root / "pretrainer.keras", vocab=root / "preset")
    assert from_preset.get_vocabulary() == tokenizer.get_vocabulary()


def test_bad_paths_are_named(saved, tmp_path):
    root, _, _, _ = saved
    with pytest.raises(FileNotFoundError, match="--model '.*missing.keras'"):
        load_for_export(tmp_path / "missing.keras")
    with pytest.raises(ValueError, match="needs a config.json"):
        load_for_export(tmp_path)
    (tmp_path / "model.h5").write_bytes(b"")
    with pytest.raises(ValueError, match="expected a `.keras` file or a preset directory"):
        load_for_export(tmp_path / "model.h5")
    with pytest.raises(FileNotFoundError, match="--vocab '.*nothing.model'"):
        load_for_export(root / "preset", vocab=tmp_path / "nothing.model")
    with pytest.raises(ValueError, match="has no tokenizer.json"):
        load_for_export(root / "preset", vocab=tmp_path)


def test_cli_exports_masked_lm_from_keras_file(saved, tmp_path, capsys):
    root, _, tokenizer, _ = saved
    out = tmp_path / "saved_models" / "albert_act_mlm"
    argv = [
        "--model", str(root / "pretrainer.keras"),
        "--vocab", str(root / "preset"),
        "--out", str(out),
        "--sequence-length", "16",
        "--top-k", "2",
        "--warmup-text", "[MASK] dog",
        "--warmup-text", "a [MASK] [MASK]",
    ]  # fmt: skip
    assert export_main(argv) == 0
    assert f"Exported AlbertActPretrainer to {out / '1'}" in capsys.readouterr().out
    requests = read_warmup_file(str(out / "1" / "assets.extra" / "tf_serving_warmup_requests"))
    texts = [t.decode() for t in tf.make_ndarray(requests[1].inputs["text"])]
    assert texts == ["[MASK] dog", "a [MASK] [MASK]"]
    loaded = tf.saved_model.load(str(out / "1"))
    outputs = loaded.signatures[TEXT_SIGNATURE](text=tf.constant(texts))
    assert outputs["top_k_ids"].shape == (2, 2, 2)
    token_ids = outputs["token_ids"].numpy()
    positions = outputs["mask_positions"].numpy()
    assert positions[0].tolist() == [1, -1]
    assert token_ids[1][positions[1]].tolist() == [tokenizer.mask_token_id] * 2

    # An explicit existing version fails before anything is built.
    with pytest.raises(FileExistsError, match="Version 1 exists already"):
        export_main(argv + ["--version", "1"])
    assert sorted(os.listdir(out)) == ["1", "models.config"]


@pytest.mark.large
def test_python_dash_m_exports_a_preset(saved, tmp_path):
    root, _, tokenizer, backbone = saved
    out = tmp_path / "saved_models" / "albert_act_demo"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_act.export",
            "--model",
            str(root / "preset"),
            "--out",
            str(out),
            "--sequence-length",
            "16",
        ],  # fmt: skip
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert f"Exported AlbertActBackbone to {out / '1'}" in completed.stdout
    texts = ["the quick brown fox", "", "Zürich"]
    loaded = tf.saved_model.load(str(out / "1"))
    outputs = loaded.signatures[TEXT_SIGNATURE](text=tf.constant(texts))
    features = preprocess(AlbertActPreprocessor(tokenizer, sequence_length=16), texts)
    expected = backbone(features, training=False)
    np.testing.assert_allclose(
        outputs["pooled_output"], expected["pooled_output"], atol=1e-5, rtol=0
    )
    np.testing.assert_array_equal(outputs["updates"], expected["updates"])


def test_cli_reports_a_missing_tokenizer(saved, tmp_path):
    root, _, _, _ = saved
    with pytest.raises(ValueError, match="without a tokenizer or preprocessor"):
        export_main(["--model", str(root / "pretrainer.keras"), "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()
