"""`training.pretrain --init` and `training.finetune --model` from plain ALBERT checkpoints.

A tiny random ALBERT (transformers, saved in the Hugging Face layout) with a
vocabulary trained here: pre-training continues from it with its MLM and SOP
heads, fine-tuning starts from it, and both learn halting from the depth the
new halting unit starts at (every token at exactly `--initial-depth` on the
first step). One end-to-end run each; the rest are in-process checks.
"""

import json
import shutil

import keras
import numpy as np
import pytest

import keras_act
from keras_act.convert import load_hf_checkpoint, save_hf_checkpoint
from tests.helpers import (
    random_plain_albert,
    run_module,
    save_plain_albert,
    train_tiny_vocabulary,
    write_sst2_tsv,
)
from training import finetune, pretrain

pytest.importorskip("torch")
pytest.importorskip("transformers")

VOCABULARY_SIZE = 150


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A vocabulary, a plain ALBERT pretraining checkpoint (spiece.model beside it) and SST-2 files."""
    folder = tmp_path_factory.mktemp("init")
    vocab = train_tiny_vocabulary(folder, size=VOCABULARY_SIZE)
    albert = random_plain_albert(pretraining=True, seed=7, vocab_size=VOCABULARY_SIZE)
    checkpoint = save_plain_albert(albert, folder / "albert")
    shutil.copy(vocab, checkpoint / "spiece.model")
    return {
        "vocab": str(vocab),
        "corpus": str(folder / "corpus.txt"),
        "albert": albert,
        "checkpoint": str(checkpoint),
        "train": str(write_sst2_tsv(folder / "train.tsv", 32, seed=0)),
        "dev": str(write_sst2_tsv(folder / "dev.tsv", 16, seed=1)),
    }


def updates_of_first_step(stdout):
    line = next(line for line in stdout.splitlines() if line.startswith("step 1/"))
    return float(line.split("updates ")[1].split()[0])


def pretrain_args(files, out, *extra):
    return [
        "--init", files["checkpoint"],
        "--corpus", files["corpus"],
        "--steps", "2", "--batch-size", "8", "--sequence-length", "32",
        "--log-every", "1", "--export-dir", "", "--strategy", "one_device",
        "--learning-rate", "1e-3", "--out", str(out),
        *extra,
    ]  # fmt: skip


@pytest.mark.large  # a pre-training process: ~2 min under load
def test_pretrain_continues_from_a_plain_albert_with_its_heads(files, tmp_path):
    out = tmp_path / "run"
    stdout = run_module(
        "training.pretrain", pretrain_args(files, out, "--initial-depth", "2", "--max-layers", "4")
    )
    assert updates_of_first_step(stdout) == 2.0  # the new halting unit: every token at 2
    recorded = json.loads((out / "run_config.json").read_text())
    assert recorded["init"] == {"path": files["checkpoint"], "max_layers": 4, "initial_depth": 2}
    assert recorded["backbone"]["max_layers"] == 4
    # Two small steps from the checkpoint: the heads are its heads, moved a little.
    trained = keras.saving.load_model(out / "pretrainer.keras", compile=False)
    weights = {variable.path: variable.numpy() for variable in trained.weights}
    state = {key: value.numpy() for key, value in files["albert"].state_dict().items()}
    for path, key, transpose in (
        ("mlm_head/output_bias", "predictions.bias", False),
        ("mlm_head/intermediate_dense/kernel", "predictions.dense.weight", True),
        ("sop_head/kernel", "sop_classifier.classifier.weight", True),
        ("token_embedding/embeddings", "albert.embeddings.word_embeddings.weight", False),
    ):
        expected = state[key].T if transpose else state[key]
        np.testing.assert_allclose(weights[path], expected, atol=0.01, err_msg=path)
        assert not np.array_equal(weights[path], expected), f"{path} was not trained"
    halting_kernel = weights["albert_act/halting_dense/kernel"]
    assert np.any(halting_kernel != 0), "the halting unit learns from its zero kernel"



def parsed_pretrain(files, *extra):
    parser = pretrain.build_parser()
    args = parser.parse_args(pretrain_args(files, "unused", *extra))
    pretrain.validate_args(args, parser)
    return args


def test_pretrain_init_of_an_albert_act_checkpoint_keeps_its_heads(files, tmp_path):
    source = load_hf_checkpoint(files["checkpoint"], pretraining_heads=True, initial_depth=3)
    save_hf_checkpoint(source, tmp_path / "act")
    args = parsed_pretrain(files, "--ponder-weight", "0.002")
    args.init = str(tmp_path / "act")
    pretrainer = pretrain.load_init_pretrainer(args)
    assert isinstance(pretrainer, keras_act.AlbertActPretrainer)
    assert pretrainer.ponder_weight == pretrainer.backbone.ponder_weight == 0.002
    expected = {variable.path: variable.numpy() for variable in source.weights}
    for variable in pretrainer.weights:
        np.testing.assert_array_equal(variable.numpy(), expected[variable.path], err_msg=variable.path)


def test_pretrain_init_errors_name_the_problem(files, tmp_path, capsys):
    parser = pretrain.build_parser()
    for argv, message in (
        (["--init", files["checkpoint"], "--preset", "demo"], "either --init or --preset"),
        (["--initial-depth", "2"], "--initial-depth applies to --init"),
        (["--init", str(tmp_path / "missing")], "--init checkpoint not found"),
        (["--init", files["checkpoint"], "--initial-depth", "0"], "initial-depth"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            pretrain.validate_args(parser.parse_args(argv), parser)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    args = parsed_pretrain(files)
    args.init = "hf://albert-base-v2"
    with pytest.raises(ValueError, match="give the checkpoint's SentencePiece model with --vocab"):
        pretrain.init_vocabulary(args)
    args = parsed_pretrain(files, "--initial-depth", "9")
    with pytest.raises(ValueError, match=r"--init .*initial_depth.*\[1, 4\]"):
        pretrain.load_init_pretrainer(args)
    with pytest.raises(ValueError, match="vocabulary of 150 pieces, but the SentencePiece model has 99"):
        pretrain.check_init_fits(args, {"vocabulary_size": 150, "max_sequence_length": 32}, 99)


@pytest.mark.large  # fine-tuning, evaluation and save: ~1 min under load
def test_finetune_from_a_plain_albert_learns_halting(files, tmp_path, capsys):
    argv = [
        "--task", "sst2", "--train", files["train"], "--dev", files["dev"],
        "--model", files["checkpoint"], "--initial-depth", "3", "--max-layers", "5",
        "--steps", "2", "--batch-size", "8", "--sequence-length", "16", "--log-every", "1",
        "--learning-rate", "1e-3", "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    assert finetune.main(argv) == 0
    out = capsys.readouterr().out
    assert updates_of_first_step(out) == 3.0
    recorded = json.loads((tmp_path / "run" / "run_config.json").read_text())
    assert recorded["backbone"]["max_layers"] == 5


def test_finetune_plain_albert_without_initial_depth_uses_the_default(files):
    parser = finetune.build_parser()
    args = parser.parse_args(
        ["--task", "sst2", "--train", files["train"], "--dev", files["dev"], "--model", files["checkpoint"]]
    )
    finetune.validate_args(args, parser)
    backbone, tokenizer, _ = finetune.load_backbone(args)
    backbone, tokenizer = finetune.prepare_backbone(args, backbone, tokenizer)
    assert backbone.max_layers == 4 and tokenizer.vocabulary_size() == VOCABULARY_SIZE
    features = {
        "token_ids": np.array([[2, 20, 30, 3]]),
        "segment_ids": np.zeros((1, 4), "int32"),
        "padding_mask": np.ones((1, 4), "int32"),
    }
    np.testing.assert_array_equal(backbone(features)["updates"].numpy(), 2.0)  # ceil(4 / 2)


def test_finetune_initial_depth_refused_for_random_weights(files, capsys):
    parser = finetune.build_parser()
    args = parser.parse_args(
        ["--task", "sst2", "--train", files["train"], "--dev", files["dev"], "--model", "demo",
         "--initial-depth", "2"]
    )  # fmt: skip
    with pytest.raises(SystemExit):
        finetune.validate_args(args, parser)
    assert "--initial-depth applies to a plain ALBERT --model" in capsys.readouterr().err
