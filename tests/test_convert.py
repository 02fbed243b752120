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
from tests.helpers import REFERENCE_DIR

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


# === Bad files name the file and the problem ===


def checkpoint_with(tmp_path, name, data, config=None):
    """A folder with TINY's config.json (or `config` text) and one weight file."""
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "config.json").write_text(config or (TINY / "config.json").read_text())
    (folder / name).write_bytes(data)
    return folder


def test_truncated_tf_model_h5_names_the_file(tmp_path):
    data = (TINY / "tf_model.h5").read_bytes()
    folder = checkpoint_with(tmp_path, "tf_model.h5", data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"tf_model\.h5: not a complete HDF5 weights file"):
        load_hf_checkpoint(str(folder))


@pytest.mark.parametrize("text, problem", [("[1, 2]", "holds a JSON list"), ('{"vocab', "is not valid JSON")])
def test_config_json_that_is_not_an_object_names_the_file(tmp_path, text, problem):
    folder = checkpoint_with(tmp_path, "model.safetensors", (TINY / "model.safetensors").read_bytes(), text)
    with pytest.raises(CheckpointError, match=rf"config\.json {problem}"):
        load_hf_checkpoint(str(folder))


def test_pytorch_bin_holding_a_list_names_the_file(tmp_path):
    torch = pytest.importorskip("torch")
    folder = checkpoint_with(tmp_path, "model.safetensors", b"")
    (folder / "model.safetensors").unlink()
    torch.save([torch.zeros(2)], str(folder / "pytorch_model.bin"))
    with pytest.raises(ValueError, match=r"pytorch_model\.bin holds a list, not a state dict"):
        load_hf_checkpoint(str(folder))


# === Ponder weight: from config.json, else from the preset of the same geometry ===

BASE = REFERENCE_DIR / "base_shape"


@pytest.mark.parametrize("max_layers, expected", [(6, 1e-3), (12, 5e-4), (24, 2.5e-4)])
def test_ponder_weight_follows_the_preset_of_the_same_geometry(tmp_path, max_layers, expected):
    # Before: 1e-3 whatever the model (the paper's base model used 2.5e-4).
    folder = tmp_path / "base"
    folder.mkdir()
    (folder / "model.safetensors").symlink_to(BASE / "model.safetensors")
    config = json.loads((BASE / "config.json").read_text())
    config["num_hidden_layers"] = max_layers
    (folder / "config.json").write_text(json.dumps(config))
    backbone = load_hf_checkpoint(str(folder))
    assert backbone.max_layers == max_layers
    assert backbone.ponder_weight == expected


def test_ponder_weight_from_config_json_wins_and_else_defaults():
    tiny = json.loads((TINY / "config.json").read_text())
    config = keras_act.convert.backbone_config_from_hf(tiny)
    # No preset has the tiny fixture's geometry: the backbone's default.
    assert keras_act.convert.ponder_weight_for(tiny, config)[0] == 1e-3
    assert keras_act.convert.ponder_weight_for(dict(tiny, tau=5e-4), config) == (
        5e-4,
        "config.json 'tau'",
    )
    with pytest.raises(CheckpointError, match="ponder_weight='high'"):
        keras_act.convert.ponder_weight_for(dict(tiny, ponder_weight="high"), config)


# === The command line ===


def run_cli(capsys, *argv):
    """`python -m keras_act.convert ARGV` in this process: (status, stdout, stderr)."""
    from keras_act.convert.__main__ import main

    try:
        status = main([str(a) for a in argv])
    except SystemExit as exit:
        status = exit.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(status, err, *words):
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m keras_act.convert: error:"), err
    for word in words:
        assert word in lines[0]


def test_cli_out_an_existing_file_is_one_line(tmp_path, capsys):
    out = tmp_path / "taken"
    out.write_text("mine")
    status, _, err = run_cli(capsys, TINY, out)
    assert_one_line_error(status, err, str(out), "existing file")
    assert out.read_text() == "mine"


@pytest.mark.parametrize(
    "argv, words",
    [
        (["{tmp}/no_such_checkpoint", "{tmp}/out"], ["no_such_checkpoint"]),
        (["{tmp}/bad", "{tmp}/out"], ["config.json holds a JSON list"]),
        (["{tiny}", "--pretraining-heads", "{tmp}/x"], [".keras"]),
        (["--out", "{tmp}/out"], ["missing SRC"]),
        (["{tiny}", "--model", "{tmp}/other", "{tmp}/out"], ["SRC given twice"]),
    ],
)
def test_cli_setup_errors_are_one_line(tmp_path, capsys, argv, words):
    checkpoint_with(tmp_path, "model.safetensors", (TINY / "model.safetensors").read_bytes(), "[1, 2]")
    argv = [a.format(tmp=tmp_path, tiny=TINY) for a in argv]
    status, _, err = run_cli(capsys, *argv)
    assert_one_line_error(status, err, *words)


def test_cli_help_shows_every_flag_with_its_default(capsys):
    status, out, _ = run_cli(capsys, "--help")
    assert status == 0
    for flag in (
        "--model", "--out", "--pretraining-heads", "--transpose-pooler", "--to-hf",
        "--initial-depth", "--max-layers",
    ):
        assert flag in out
    assert out.count("(default: False)") == 3 and "(default: None)" in out


def test_cli_replaces_an_existing_preset_whole(tmp_path, capsys):
    # Before: the old preset's tokenizer stayed beside the new backbone.
    out = tmp_path / "preset"
    old = keras_act.AlbertActBackbone(
        vocabulary_size=50, embedding_dim=8, hidden_dim=16, num_heads=2,
        intermediate_dim=32, max_layers=2, max_sequence_length=16,
    )
    old.save_to_preset(str(out))
    (out / "tokenizer.json").write_text("{}")
    (out / "assets").mkdir(exist_ok=True)
    (out / "assets" / "spiece.model").write_bytes(b"old vocabulary")
    # The spelling of the other tools: --model SRC --out OUT.
    status, stdout, err = run_cli(capsys, "--model", TINY, "--out", out)
    assert status == 0, err
    assert "ponder weight 0.001, from default" in stdout
    assert not (out / "tokenizer.json").exists()
    assert not (out / "assets" / "spiece.model").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preset"]  # nothing left beside it
    inputs, io = tiny_inputs()
    backbone = keras_act.AlbertActBackbone.from_preset(str(out))
    np.testing.assert_array_equal(backbone(inputs)["updates"].numpy(), io["updates"])
    # A conversion that fails leaves the preset as it was.
    before = sorted(p.name for p in out.rglob("*"))
    status, _, err = run_cli(capsys, tmp_path / "missing", out)
    assert status == 2 and sorted(p.name for p in out.rglob("*")) == before


def test_cli_prints_the_ponder_weight_of_config_json(tmp_path, capsys):
    folder = copy_checkpoint(tmp_path, config_edit=lambda c: c.update(ponder_weight=5e-4))
    status, stdout, err = run_cli(capsys, folder, tmp_path / "model.keras")
    assert status == 0, err
    assert "ponder weight 0.0005, from config.json 'ponder_weight'" in stdout
    import keras

    assert keras.saving.load_model(str(tmp_path / "model.keras")).ponder_weight == 5e-4


# === hf:// without a network ===


def test_unreachable_hub_is_one_clear_line_at_once(tmp_path):
    # An endpoint that refuses connections, HF_HUB_OFFLINE unset, an empty
    # cache. Before: five retries with back-off, then a 130-line traceback.
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(
        HF_ENDPOINT="http://127.0.0.1:9",
        HF_HOME=str(tmp_path / "hf"),
        HF_HUB_CACHE=str(tmp_path / "hf" / "hub"),
        HF_HUB_ETAG_TIMEOUT="2",
        HF_HUB_DOWNLOAD_TIMEOUT="2",
    )
    api = (
        "import keras_act.convert as c\n"
        "try:\n"
        "    c.load_hf_checkpoint('hf://asi/albert-act-tiny')\n"
        "except c.HubUnreachableError as error:\n"
        "    print('RAISED', error)\n"
        "import huggingface_hub.constants as hub\n"
        "hub.HF_HUB_OFFLINE = True  # offline, and nothing cached\n"
        "try:\n"
        "    c.load_hf_checkpoint('hf://asi/albert-act-tiny')\n"
        "except c.HubUnreachableError as error:\n"
        "    print('OFFLINE', error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", api], env=env, cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = "cannot reach the Hugging Face hub; pass a local folder or set HF_HUB_OFFLINE with a cached copy"
    assert f"RAISED hf://asi/albert-act-tiny: {expected}" in result.stdout
    assert "Retrying" not in result.stderr
    assert f"OFFLINE hf://asi/albert-act-tiny: {expected} (HF_HUB_OFFLINE is set" in result.stdout
    cli = subprocess.run(
        [sys.executable, "-m", "keras_act.convert", "hf://asi/albert-act-tiny", str(tmp_path / "out")],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 2
    errors = [line for line in cli.stderr.splitlines() if "keras_act.convert" in line or "Traceback" in line]
    assert errors == [line for line in errors if line.startswith("python -m keras_act.convert: error:")]
    assert len(errors) == 1 and expected in errors[0]
    assert "Retrying" not in cli.stderr and "Traceback" not in cli.stderr


def test_cli_outputs_have_the_mode_of_a_new_file(tmp_path, capsys):
    """The staging folder and file of `mkdtemp`/`mkstemp` are private (0700,
    0600); the published preset and `.keras` file must not stay so."""
    umask = os.umask(0)
    os.umask(umask)
    for out, extra in ((tmp_path / "preset", []), (tmp_path / "p.keras", ["--pretraining-heads"])):
        status, _, err = run_cli(capsys, TINY, out, *extra)
        assert status in (0, None), err
        default = (0o777 if out.is_dir() else 0o666) & ~umask
        assert out.stat().st_mode & 0o777 == default, (out, oct(out.stat().st_mode))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["p.keras", "preset"]


def test_a_pathlib_path_is_accepted(tmp_path):
    folder = copy_checkpoint(tmp_path)
    from_path = load_hf_checkpoint(Path(folder))
    from_str = load_hf_checkpoint(str(folder))
    for a, b in zip(from_path.get_weights(), from_str.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
