"""`keras_act.model_loading`: the one loader of fine-tuning, export and analysis."""

import shutil

import numpy as np
import pytest

import keras_act
from keras_act.model_loading import albert_act_backbone_of, load_model, preset_dir
from keras_act.tokenizers import AlbertActTokenizer
from tests.helpers import tiny_backbone, train_tiny_sentencepiece


def assert_same_weights(a, b):
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_an_authors_checkpoint_with_its_spiece_model(reference_dir, tmp_path):
    """Export used to refuse checkpoints ("unknown class None")."""
    checkpoint = tmp_path / "tiny_random"
    shutil.copytree(reference_dir / "tiny_random", checkpoint)
    model, preprocessing = load_model(checkpoint, require_preprocessing=False)
    assert preprocessing is None
    train_tiny_sentencepiece(checkpoint / "spiece.model")
    model, preprocessing = load_model(checkpoint, require_preprocessing=True)
    assert isinstance(preprocessing, AlbertActTokenizer)
    assert_same_weights(model, keras_act.convert.load_hf_checkpoint(str(checkpoint)))
    # One of its weight files names the checkpoint too.
    model, _ = load_model(checkpoint / "model.safetensors")
    assert_same_weights(model, keras_act.convert.load_hf_checkpoint(str(checkpoint)))


def test_a_pretraining_run_folder_and_a_dtype(tmp_path):
    vocab = train_tiny_sentencepiece(tmp_path / "tiny.model")
    tokenizer = AlbertActTokenizer(proto=vocab)
    backbone = tiny_backbone(tokenizer.vocabulary_size())
    run = tmp_path / "run"
    backbone.save_to_preset(str(run / "preset"))
    tokenizer.save_to_preset(str(run / "preset"))
    assert preset_dir(run) == str(run / "preset")
    model, preprocessing = load_model(run, dtype="mixed_bfloat16")
    assert isinstance(preprocessing, AlbertActTokenizer)
    assert model.dtype_policy.name == "mixed_bfloat16"
    assert_same_weights(model, backbone)
    # Without a dtype, the preset's own policy.
    assert load_model(run).model.dtype_policy.name == backbone.dtype_policy.name
    assert albert_act_backbone_of(keras_act.AlbertActPretrainer(model), run) is model


def test_a_saved_model_is_named_not_loaded(tmp_path):
    (tmp_path / "3").mkdir()
    (tmp_path / "3" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ValueError, match="is an exported SavedModel, not a Keras model"):
        load_model(tmp_path)


def test_a_checkpoint_of_another_architecture_names_the_flag(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "model.safetensors").write_bytes(b"")
    expected = r"--model '.*': Not an ALBERT or ALBERT-ACT checkpoint: config.json has model_type='bert'"
    with pytest.raises(ValueError, match=expected):
        load_model(tmp_path)
