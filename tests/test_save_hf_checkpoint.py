"""`keras_act.convert.save_hf_checkpoint`: export in the authors' layout, on every reference fixture.

Each fixture is loaded, saved and loaded again: the written tensors equal
the authors' files bitwise, the key set and shapes are those of the
fixture's `keys.txt` / `pretraining_keys.txt`, `config.json` carries every
field of theirs, and the reloaded model gives identical outputs.
"""

import json
import os

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file

import keras_act
from keras_act.convert import load_hf_checkpoint, save_hf_checkpoint
from keras_act.convert.__main__ import main as convert_main
from tests.helpers import REFERENCE_DIR

CASES = ["tiny_random", "small_mixed_depth", "base_shape"]


@pytest.fixture(autouse=True)
def _needs_reference(reference_dir):
    pass


def key_list(path):
    """`{key: (shape, dtype)}` of a fixture's keys.txt."""
    keys = {}
    for line in path.read_text().splitlines():
        key, shape, dtype = line.split("\t")
        keys[key] = (tuple(json.loads(shape)), dtype)
    return keys


def written_keys(folder):
    with safe_open(str(folder / "model.safetensors"), "np") as file:
        assert file.metadata() == {"format": "pt"}
        return {
            key: (tuple(file.get_slice(key).get_shape()), str(file.get_tensor(key).dtype))
            for key in file.keys()
        }


def fixture_inputs(case):
    io = np.load(REFERENCE_DIR / case / "io.npz")
    return {
        "token_ids": io["input_ids"],
        "segment_ids": io["token_type_ids"],
        "padding_mask": io["attention_mask"],
    }


def authors_pretraining_state(case):
    """The fixture's full `AlbertActForPreTraining` state dict."""
    folder = REFERENCE_DIR / case
    if (folder / "pretraining_model.safetensors").is_file():
        return load_file(str(folder / "pretraining_model.safetensors"))
    state = {f"albert.{k}": v for k, v in load_file(str(folder / "model.safetensors")).items()}
    state.update(load_file(str(folder / "pretraining_heads.safetensors")))
    state["predictions.decoder.weight"] = state["albert.embeddings.word_embeddings.weight"]
    state["predictions.decoder.bias"] = state["predictions.bias"]
    return state


def assert_config_carries_the_authors_fields(folder, case, architecture):
    theirs = json.loads((REFERENCE_DIR / case / "config.json").read_text())
    ours = json.loads((folder / "config.json").read_text())
    theirs.pop("transformers_version")
    theirs["architectures"] = [architecture]
    assert {key: ours[key] for key in theirs} == theirs
    assert set(ours) - set(theirs) == {"ponder_weight"}


@pytest.mark.parametrize("case", CASES)
def test_backbone_round_trip_is_the_authors_file(tmp_path, case):
    backbone = load_hf_checkpoint(str(REFERENCE_DIR / case))
    folder = tmp_path / "export"
    assert save_hf_checkpoint(backbone, folder) == str(folder)
    assert sorted(os.listdir(folder)) == ["config.json", "model.safetensors"]
    assert written_keys(folder) == key_list(REFERENCE_DIR / case / "keys.txt")
    theirs = load_file(str(REFERENCE_DIR / case / "model.safetensors"))
    ours = load_file(str(folder / "model.safetensors"))
    for key, value in theirs.items():
        np.testing.assert_array_equal(ours[key], value, err_msg=key)
    assert_config_carries_the_authors_fields(folder, case, "AlbertActModel")

    reloaded = load_hf_checkpoint(str(folder))
    assert reloaded.ponder_weight == backbone.ponder_weight
    inputs = fixture_inputs(case)
    expected, actual = backbone(inputs), reloaded(inputs)
    for name in ("sequence_output", "pooled_output", "updates", "remainders"):
        np.testing.assert_array_equal(actual[name].numpy(), expected[name].numpy(), err_msg=name)


@pytest.mark.parametrize("case", CASES)
def test_pretrainer_round_trip_keeps_the_heads(tmp_path, case):
    pretrainer = load_hf_checkpoint(str(REFERENCE_DIR / case), pretraining_heads=True)
    folder = tmp_path / "export"
    save_hf_checkpoint(pretrainer, folder)
    assert written_keys(folder) == key_list(REFERENCE_DIR / case / "pretraining_keys.txt")
    ours = load_file(str(folder / "model.safetensors"))
    for key, value in authors_pretraining_state(case).items():
        np.testing.assert_array_equal(ours[key], value, err_msg=key)
    assert_config_carries_the_authors_fields(folder, case, "AlbertActForPreTraining")

    reloaded = load_hf_checkpoint(str(folder), pretraining_heads=True)
    assert isinstance(reloaded, keras_act.AlbertActPretrainer)
    expected = {variable.path: variable.numpy() for variable in pretrainer.weights}
    for variable in reloaded.weights:
        np.testing.assert_array_equal(variable.numpy(), expected[variable.path], err_msg=variable.path)
    inputs = fixture_inputs(case)
    np.testing.assert_array_equal(
        reloaded.backbone(inputs)["sequence_output"].numpy(),
        pretrainer.backbone(inputs)["sequence_output"].numpy(),
    )


def tiny_backbone():
    return load_hf_checkpoint(str(REFERENCE_DIR / "tiny_random"))


def test_a_killed_export_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    import safetensors.numpy

    folder = tmp_path / "export"
    save_hf_checkpoint(tiny_backbone(), folder)
    before = {name: (folder / name).read_bytes() for name in os.listdir(folder)}

    def killed(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", killed)
    with pytest.raises(OSError, match="disk full"):
        save_hf_checkpoint(tiny_backbone(), folder)
    assert {name: (folder / name).read_bytes() for name in os.listdir(folder)} == before
    assert os.listdir(tmp_path) == ["export"]  # no staging folder left


def test_refuses_to_replace_a_folder_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds no checkpoint"):
        save_hf_checkpoint(tiny_backbone(), tmp_path)
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_a_task_model_is_refused_naming_its_backbone():
    classifier = keras_act.AlbertActTextClassifier(tiny_backbone(), num_classes=2, preprocessor=None)
    with pytest.raises(TypeError, match=r"AlbertActTextClassifier \(for a task, pass its `.backbone`\)"):
        save_hf_checkpoint(classifier, "unused")


def test_cli_to_hf_exports_a_preset_and_a_keras_pretrainer(tmp_path, capsys):
    preset = tmp_path / "preset"
    tiny_backbone().save_to_preset(str(preset))
    assert convert_main(["--to-hf", str(preset), str(tmp_path / "hf")]) == 0
    assert "AlbertActModel" in capsys.readouterr().out
    assert written_keys(tmp_path / "hf") == key_list(REFERENCE_DIR / "tiny_random" / "keys.txt")

    pretrainer_file = tmp_path / "pretrainer.keras"
    load_hf_checkpoint(str(REFERENCE_DIR / "tiny_random"), pretraining_heads=True).save(pretrainer_file)
    assert convert_main(["--model", str(pretrainer_file), "--out", str(tmp_path / "hf2"), "--to-hf"]) == 0
    assert "AlbertActForPreTraining" in capsys.readouterr().out
    assert written_keys(tmp_path / "hf2") == key_list(
        REFERENCE_DIR / "tiny_random" / "pretraining_keys.txt"
    )


def test_cli_to_hf_refuses_import_flags_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        convert_main(["--to-hf", "--initial-depth", "2", "src", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--initial-depth applies to an import" in err
