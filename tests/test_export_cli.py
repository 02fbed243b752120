"""`python -m keras_act.export`: presets and `.keras` files to SavedModel versions."""

import argparse
import functools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import keras_act
from keras_act.export import TEXT_SIGNATURE, read_warmup_file
from keras_act.export.__main__ import build_parser
from keras_act.export.__main__ import main as export_main
from keras_act.export.archive import budget_inputs_for
from keras_act.model_loading import load_model
from keras_act.tokenizers import AlbertActPreprocessor, AlbertActTokenizer
from tests.helpers import preprocess, tiny_backbone, train_tiny_sentencepiece

REPO = Path(__file__).resolve().parents[1]
# What `python -m keras_act.export` loads its --model with.
load_for_export = functools.partial(load_model, require_preprocessing=True)


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
    # The restored tf.function: the depth-budget inputs are optional.
    outputs = loaded.serving_default(text=tf.constant(texts))
    assert outputs["top_k_ids"].shape == (2, 2, 2)
    token_ids = outputs["token_ids"].numpy()
    positions = outputs["mask_positions"].numpy()
    assert positions[0].tolist() == [1, -1]
    assert token_ids[1][positions[1]].tolist() == [tokenizer.mask_token_id] * 2

    # An explicit existing version fails before anything is built, in one line.
    message = _setup_error(argv + ["--version", "1"])
    assert "Version 1 exists already" in message
    assert sorted(os.listdir(out)) == ["1", "batching_parameters.txt", "models.config"]


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
    # The signature function takes every input: the budget's defaults too.
    signature = loaded.signatures[TEXT_SIGNATURE]
    outputs = signature(text=tf.constant(texts), **budget_inputs_for(str(out / "1"), signature))
    features = preprocess(AlbertActPreprocessor(tokenizer, sequence_length=16), texts)
    expected = backbone(features, training=False)
    np.testing.assert_allclose(
        outputs["pooled_output"], expected["pooled_output"], atol=1e-5, rtol=0
    )
    np.testing.assert_array_equal(outputs["updates"], expected["updates"])


def _setup_error(argv):
    """The CLI's error for `argv`: one line, `python -m keras_act.export: error: ...`."""
    with pytest.raises(SystemExit) as info:
        export_main(argv)
    message = info.value.code
    assert isinstance(message, str), message
    assert message.startswith("python -m keras_act.export: error: "), message
    assert "\n" not in message, message
    return message


def test_cli_reports_a_missing_tokenizer(saved, tmp_path):
    root, _, _, _ = saved
    message = _setup_error(
        ["--model", str(root / "pretrainer.keras"), "--out", str(tmp_path / "x")]
    )
    assert "without a tokenizer or preprocessor" in message
    assert not (tmp_path / "x").exists()


def test_cli_setup_errors_are_one_line(saved, tmp_path):
    root, vocab, _, _ = saved
    out = str(tmp_path / "out")
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes((root / "pretrainer.keras").read_bytes()[:200])
    not_an_object = tmp_path / "list_preset"
    not_an_object.mkdir()
    (not_an_object / "config.json").write_text("[1, 2]")
    cases = {
        "missing model": (["--model", str(tmp_path / "missing"), "--out", out], "missing"),
        "truncated .keras": (
            ["--model", str(truncated), "--out", out],
            f"--model '{truncated}': cannot load the .keras file",
        ),
        "config.json not an object": (
            ["--model", str(not_an_object), "--out", out],
            "config.json: expected a JSON object, found a list",
        ),
        "missing vocab": (
            [
                "--model",
                str(root / "preset"),
                "--vocab",
                str(tmp_path / "none.model"),
                "--out",
                out,
            ],
            "--vocab",
        ),
        "bad sequence length": (
            ["--model", str(root / "preset"), "--out", out, "--sequence-length", "2"],
            "sequence_length=2",
        ),
        "bad top-k": (
            [
                "--model",
                str(root / "pretrainer.keras"),
                "--vocab",
                vocab,
                "--out",
                out,
                "--top-k",
                "0",
            ],
            "top_k=0",
        ),
        "bad version": (
            ["--model", str(root / "preset"), "--out", out, "--version", "0"],
            "version=0",
        ),
    }
    for name, (argv, expected) in cases.items():
        assert expected in _setup_error(argv), name
    assert not os.path.exists(out)


def test_out_that_is_a_file_is_a_one_line_error(saved, tmp_path):
    root, _, _, _ = saved
    out = tmp_path / "saved_models"
    out.write_text("not a folder")
    argv = ["--model", str(root / "preset"), "--out", str(out)]
    assert f"{out} exists and is not a folder" in _setup_error(argv)
    # The same through `python -m`: one line on stderr, no traceback.
    completed = subprocess.run(
        [sys.executable, "-m", "keras_act.export", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=600,
    )
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if "keras_act.export: error:" in line]
    assert errors == [
        f"python -m keras_act.export: error: {out} exists and is not a folder: "
        "the export's base folder (saved_models/NAME) holds one sub-folder per version."
    ]
    assert out.read_text() == "not a folder"


def test_help_shows_a_help_line_and_the_default_of_every_flag():
    parser = build_parser()
    text = " ".join(parser.format_help().split())
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        flag = action.option_strings[0]
        assert action.help, flag
        shown = formatter._get_help_string(action) % vars(action)
        assert "default" in shown or (action.required and shown.startswith("required")), flag
        assert " ".join(shown.split()) in text, flag
    assert "fills per [MASK] of a masked LM (default: 5)" in text
