"""`keras_act.convert`: checkpoint import errors, formats, hub cache and CLI."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import keras_act
from keras_act.convert import CheckpointError, load_hf_checkpoint
from tests.conftest import REFERENCE_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = REFERENCE_DIR / "tiny_random"


@pytest.fixture(autouse=True)
def _needs_reference(reference_dir):
    pass


def copy_checkpoint(tmp_path, edit=None, config_edit=None):
    """A copy of the tiny fixture, with its state dict and config edited."""
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    weights = load_file(str(TINY / "model.safetensors"))
    if edit:
        edit(weights)
    save_file(weights, str(folder / "model.safetensors"))
    config = json.loads((TINY / "config.json").read_text())
    if config_edit:
        config_edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def tiny_inputs():
    io = np.load(TINY / "io.npz")
    return {
        "token_ids": io["input_ids"],
        "segment_ids": io["token_type_ids"],
        "padding_mask": io["attention_mask"],
    }, io


def test_missing_tensor_names_the_key(tmp_path):
    folder = copy_checkpoint(tmp_path, lambda w: w.pop("encoder.albert_layer.ffn.bias"))
    with pytest.raises(CheckpointError, match=r"missing tensor\(s\) \['encoder.albert_layer.ffn.bias'\]"):
        load_hf_checkpoint(str(folder))


def test_extra_tensor_names_the_key(tmp_path):
    def add(weights):
        weights["encoder.albert_layer.extra.weight"] = np.zeros((2, 2), "float32")

    folder = copy_checkpoint(tmp_path, add)
    with pytest.raises(CheckpointError, match="encoder.albert_layer.extra.weight"):
        load_hf_checkpoint(str(folder))


def test_wrong_shape_names_the_key_and_both_shapes(tmp_path):
    def reshape(weights):
        weights["encoder.albert_layer.ffn.weight"] = np.zeros((65, 32), "float32")

    folder = copy_checkpoint(tmp_path, reshape)
    with pytest.raises(CheckpointError) as error:
        load_hf_checkpoint(str(folder))
    message = str(error.value)
    assert "'encoder.albert_layer.ffn.weight'" in message
    assert "(65, 32)" in message and "(64, 32)" in message


def test_config_of_another_architecture_is_refused(tmp_path):
    folder = copy_checkpoint(tmp_path, config_edit=lambda c: c.update(model_type="bert"))
    with pytest.raises(CheckpointError, match="model_type='bert'"):
        load_hf_checkpoint(str(folder))


def test_config_with_several_groups_is_refused(tmp_path):
    folder = copy_checkpoint(tmp_path, config_edit=lambda c: c.update(inner_group_num=2))
    with pytest.raises(CheckpointError, match="inner_group_num=2"):
        load_hf_checkpoint(str(folder))


def test_missing_folder_and_unknown_format_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        load_hf_checkpoint(str(tmp_path / "no_such_dir"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_hf_checkpoint(str(tmp_path / "empty"))
    shutil.copy(TINY / "config.json", tmp_path)
    weird = tmp_path / "model.pkl"
    weird.write_bytes(b"not weights")
    with pytest.raises(ValueError, match="Unsupported weight file"):
        load_hf_checkpoint(str(weird))


def test_pretraining_heads_absent_is_clear(tmp_path):
    folder = copy_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="no pre-training heads"):
        load_hf_checkpoint(str(folder), pretraining_heads=True)


def test_untied_decoder_is_refused(tmp_path):
    folder = tmp_path / "untied"
    folder.mkdir()
    shutil.copy(TINY / "config.json", folder)
    weights = load_file(str(TINY / "pretraining_model.safetensors"))
    weights["predictions.decoder.weight"] = weights["predictions.decoder.weight"] + 1.0
    save_file(weights, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="predictions.decoder.weight"):
        load_hf_checkpoint(str(folder), pretraining_heads=True)


def test_pytorch_bin_without_torch_suggests_safetensors(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="model.safetensors"):
        load_hf_checkpoint(str(TINY / "pytorch_model.bin"))


def test_pytorch_bin_is_never_unpickled_unsafely(tmp_path):
    pytest.importorskip("torch")

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned > /dev/null",))

    import pickle

    import torch

    folder = tmp_path / "evil"
    folder.mkdir()
    shutil.copy(TINY / "config.json", folder)
    torch.save({"x": Payload()}, str(folder / "pytorch_model.bin"), pickle_module=pickle)
    with pytest.raises(ValueError, match="weights_only=True"):
        load_hf_checkpoint(str(folder / "pytorch_model.bin"))


def test_transpose_pooler_reads_the_tf_layout(tmp_path):
    def transpose(weights):
        weights["pooler.weight"] = np.ascontiguousarray(weights["pooler.weight"].T)

    folder = copy_checkpoint(tmp_path, transpose)
    inputs, io = tiny_inputs()
    backbone = load_hf_checkpoint(str(folder), transpose_pooler=True)
    np.testing.assert_allclose(
        backbone(inputs)["pooled_output"].numpy(), io["pooler_output"], atol=1e-5, rtol=1e-5
    )


def test_hf_scheme_reads_a_prepopulated_hub_cache_offline(tmp_path):
    """`hf://asi/albert-act-tiny` from a hub cache, with HF_HUB_OFFLINE=1."""
    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--asi--albert-act-tiny"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(TINY / name, snapshot / name)
    script = (
        "import numpy as np, keras_act.convert as c\n"
        "io = np.load(%r)\n"
        "b = c.load_hf_checkpoint('hf://asi/albert-act-tiny')\n"
        "out = b({'token_ids': io['input_ids'], 'segment_ids': io['token_type_ids'],"
        " 'padding_mask': io['attention_mask']})\n"
        "assert np.array_equal(out['updates'].numpy(), io['updates'])\n"
        "print('OK', b.max_layers)\n"
    ) % str(TINY / "io.npz")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache), HF_HOME=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK 6" in result.stdout


def test_cli_writes_a_preset_and_a_keras_file(tmp_path):
    inputs, io = tiny_inputs()
    preset = tmp_path / "preset"
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    for out, extra in ((preset, []), (tmp_path / "pretrainer.keras", ["--pretraining-heads"])):
        result = subprocess.run(
            [sys.executable, "-m", "keras_act.convert", str(TINY), str(out), *extra],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Converted" in result.stdout
    backbone = keras_act.AlbertActBackbone.from_preset(str(preset))
    np.testing.assert_array_equal(backbone(inputs)["updates"].numpy(), io["updates"])

    import keras

    pretrainer = keras.saving.load_model(str(tmp_path / "pretrainer.keras"))
    batch, length = io["input_ids"].shape
    outputs = pretrainer(dict(inputs, mask_positions=np.tile(np.arange(length), (batch, 1))))
    mask = io["attention_mask"].astype(bool)
    np.testing.assert_allclose(
        outputs["mlm_logits"].numpy()[mask], io["prediction_logits"][mask], atol=1e-5, rtol=1e-5
    )


def test_cli_refuses_heads_into_a_preset_directory(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "keras_act.convert", str(TINY), str(tmp_path / "x"), "--pretraining-heads"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert ".keras" in result.stderr
