"""`python -m training.finetune`: SST-2 above chance, mirrored over two
logical CPUs equal to one device, TFDS, every `--init` form, and bad input
failing before any training step."""

import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_act
from tests.helpers import (
    run_module,
    train_tiny_vocabulary,
    write_sst2_tsv,
)
from tests.helpers import tiny_task_backbone as tiny_backbone
from training import finetune

REPO_ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--steps", "2", "--batch-size", "8", "--sequence-length", "16", "--log-every", "1"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny vocabulary, a random tiny backbone saved as a preset, and
    synthetic SST-2-layout train/dev files."""
    folder = tmp_path_factory.mktemp("finetune")
    vocab = train_tiny_vocabulary(folder)
    tokenizer = keras_act.AlbertActTokenizer(proto=str(vocab))
    keras.utils.set_random_seed(0)
    backbone = tiny_backbone(tokenizer.vocabulary_size())
    preset = folder / "preset"
    backbone.save_to_preset(str(preset))
    tokenizer.save_to_preset(str(preset))
    return {
        "vocab": str(vocab),
        "preset": str(preset),
        "train": str(write_sst2_tsv(folder / "train.tsv", 64, seed=0)),
        "dev": str(write_sst2_tsv(folder / "dev.tsv", 24, seed=1)),
        "backbone": backbone,
    }


def finetune_args(files, model_dir, *extra, task="sst2"):
    return [
        "--task", task,
        "--train", files["train"],
        "--dev", files["dev"],
        "--init", files["preset"],
        "--model-dir", str(model_dir),
        *QUICK,
        *extra,
    ]  # fmt: skip


def fails_before_training(argv, capsys, match):
    """Runs the CLI in-process; it must exit with status 2, print an error
    matching `match`, and have run no training step."""
    with pytest.raises(SystemExit) as raised:
        finetune.main(argv)
    assert raised.value.code == 2
    out, err = capsys.readouterr()
    assert "step " not in out
    assert match.lower() in err.lower(), err
    return err


# === Results ===


def test_sst2_dev_accuracy_clearly_above_chance(shared_dir, tmp_path):
    """From a random small backbone with ALBERT's vocabulary and the ponder
    cost on: 500 steps on 12,800 SST-2 sentences. Measured: dev accuracy
    0.77-0.78 (seeds 0 and 1; chance and the majority class are 0.51)."""
    spiece = shared_dir / "data" / "albert_v2_spiece.model"
    glue_dir = shared_dir / "data" / "glue" / "SST-2"
    tokenizer = keras_act.AlbertActTokenizer(proto=str(spiece))
    keras.utils.set_random_seed(0)
    backbone = keras_act.AlbertActBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        embedding_dim=32,
        hidden_dim=64,
        num_heads=4,
        intermediate_dim=128,
        max_layers=4,
        max_sequence_length=128,
    )
    preset = tmp_path / "preset"
    backbone.save_to_preset(str(preset))
    tokenizer.save_to_preset(str(preset))
    model_dir = tmp_path / "run"
    finetune.main(
        [
            "--task", "sst2",
            "--train", str(glue_dir / "train.tsv"),
            "--dev", str(glue_dir / "dev.tsv"),
            "--init", str(preset),
            "--max-train-examples", "12800",
            "--steps", "500",
            "--batch-size", "32",
            "--learning-rate", "1e-3",
            "--sequence-length", "64",
            "--strategy", "one_device",
            "--log-every", "100",
            "--model-dir", str(model_dir),
            "--no-save",
        ]
    )  # fmt: skip
    results = json.loads((model_dir / "eval_results.json").read_text())
    assert results["task"] == "sst2" and results["dev_examples"] == 872
    assert results["metrics"]["accuracy"] >= 0.70, results
    assert 1.0 <= results["mean_updates"] <= 4.0
    assert results["ponder_weight"] == pytest.approx(1e-3)


def run_cli(args, env_extra=None):
    return run_module("training.finetune", args, env_extra)


def step_losses(stdout):
    return [
        float(line.split("loss ")[1].split()[0])
        for line in stdout.splitlines()
        if line.startswith("step ")
    ]


def test_mirrored_two_cpus_equals_one_device(files, tmp_path):
    common = [
        *finetune_args(files, tmp_path / "unused", "--steps", "3", "--dropout", "0"),
        "--cpu-devices", "2",
        "--deterministic",
    ]  # fmt: skip
    common.remove("--model-dir")
    common.remove(str(tmp_path / "unused"))
    one = run_cli([*common, "--strategy", "one_device", "--model-dir", str(tmp_path / "one")])
    two = run_cli([*common, "--strategy", "mirrored", "--model-dir", str(tmp_path / "two")])
    assert "1 replica(s) (OneDeviceStrategy)" in one
    assert "2 replica(s) (MirroredStrategy)" in two
    assert len(step_losses(one)) == 3
    np.testing.assert_allclose(step_losses(one), step_losses(two), rtol=1e-5)
    first = keras.saving.load_model(tmp_path / "one" / "model.keras")
    second = keras.saving.load_model(tmp_path / "two" / "model.keras")
    assert isinstance(first, keras_act.AlbertActTextClassifier)
    for a, b in zip(first.weights, second.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, err_msg=a.path)
    one_results = json.loads((tmp_path / "one" / "eval_results.json").read_text())
    two_results = json.loads((tmp_path / "two" / "eval_results.json").read_text())
    assert one_results["metrics"] == pytest.approx(two_results["metrics"])
    assert one_results["mean_updates"] == pytest.approx(two_results["mean_updates"])


def gradient_norms(stdout):
    return [
        float(line.split("gradient_norm ")[1].split()[0])
        for line in stdout.splitlines()
        if line.startswith("step ")
    ]


def test_gradient_accumulation_equals_the_full_batch(files, tmp_path):
    """`--accumulation-steps 2`: the same losses, gradient norms (a gradient
    k times too large shows here even where clipping hides it) and weights
    as one full batch."""
    common = [*finetune_args(files, tmp_path / "unused", "--steps", "3", "--dropout", "0"),
              "--deterministic", "--strategy", "one_device", "--learning-rate", "1e-3"]  # fmt: skip
    common = common[: common.index("--model-dir")] + common[common.index("--model-dir") + 2 :]
    full = run_cli([*common, "--model-dir", str(tmp_path / "full")])
    acc = run_cli([*common, "--accumulation-steps", "2", "--model-dir", str(tmp_path / "acc")])
    assert len(gradient_norms(full)) == 3
    np.testing.assert_allclose(gradient_norms(acc), gradient_norms(full), rtol=1e-4)
    np.testing.assert_allclose(step_losses(acc), step_losses(full), rtol=1e-5)
    first = keras.saving.load_model(tmp_path / "full" / "model.keras")
    second = keras.saving.load_model(tmp_path / "acc" / "model.keras")
    for a, b in zip(first.weights, second.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, err_msg=a.path)


def test_float16_scales_the_loss_and_resumes_at_its_step(files, tmp_path):
    import tensorflow as tf

    model_dir = tmp_path / "float16"
    args = [*finetune_args(files, model_dir, "--mixed-precision", "float16"), "--checkpoint-every", "1"]
    first = run_cli(args)
    assert len(step_losses(first)) == 2 and all(np.isfinite(step_losses(first)))
    checkpoint = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    names = [name for name, _ in tf.train.list_variables(checkpoint)]
    # The optimizer is a LossScaleOptimizer (its dynamic scale is saved), and
    # the run's own step counter is saved beside it.
    assert any("dynamic_scale" in name for name in names), names
    assert any(name.startswith("step/") for name in names), names
    args[args.index("--steps") + 1] = "3"
    resumed = run_cli(args)
    assert "at step 2" in resumed and [line.split()[1] for line in resumed.splitlines() if line.startswith("step ")] == ["3/3"]


def test_tfds_stsb_regression_with_mock_data(files, tmp_path, capsys):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=16):
        finetune.main(
            [
                "--task", "stsb",
                "--tfds", "glue/stsb",
                "--init", files["preset"],
                "--model-dir", str(tmp_path),
                *QUICK,
            ]
        )  # fmt: skip
    out = capsys.readouterr().out
    assert "GLUE stsb: 16 training and 16 dev examples" in out
    assert out.count("\nstep ") + out.startswith("step ") == 2
    results = json.loads((tmp_path / "eval_results.json").read_text())
    assert set(results["metrics"]) == {"pearson", "spearman"}
    assert results["mean_updates"] >= 1.0
    restored = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(restored, keras_act.AlbertActTextRegressor)
    assert (tmp_path / "logs").is_dir() and (tmp_path / "checkpoints" / "checkpoint").is_file()


# === --init ===


def parsed(argv):
    parser = finetune.build_parser()
    args = parser.parse_args(argv)
    finetune.validate_args(args, parser)
    return args


def test_init_from_a_keras_file_of_a_pretrainer(files, tmp_path):
    pretrainer = keras_act.AlbertActPretrainer(files["backbone"])
    path = tmp_path / "pretrainer.keras"
    pretrainer.save(path)
    args = parsed(finetune_args(files, tmp_path, "--vocab", files["vocab"]) + ["--init", str(path)])
    backbone, tokenizer, _ = finetune.load_backbone(args)
    assert tokenizer is None  # A pretrainer has no preprocessor: --vocab gives it.
    backbone, tokenizer = finetune.prepare_backbone(args, backbone, tokenizer)
    for a, b in zip(backbone.weights, files["backbone"].weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    task = finetune.build_task(args, backbone, tokenizer)
    assert isinstance(task, keras_act.AlbertActTextClassifier)


def test_init_from_a_pretraining_run_dir_and_max_layers(files, tmp_path):
    run_dir = tmp_path / "pretrain_run"
    run_dir.mkdir()
    os.symlink(files["preset"], run_dir / "preset")
    args = parsed(finetune_args(files, tmp_path, "--max-layers", "5") + ["--init", str(run_dir)])
    backbone, tokenizer, source = finetune.load_backbone(args)
    assert source.endswith("preset") and tokenizer is not None
    backbone, tokenizer = finetune.prepare_backbone(args, backbone, tokenizer)
    assert backbone.max_layers == 5
    for a, b in zip(backbone.weights, files["backbone"].weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_init_from_an_authors_checkpoint(reference_dir, tmp_path):
    checkpoint = reference_dir / "tiny_random"
    config = json.loads((checkpoint / "config.json").read_text())
    vocab = train_tiny_vocabulary(tmp_path, size=config["vocab_size"])
    train = write_sst2_tsv(tmp_path / "train.tsv", 8)
    args = parsed(
        ["--task", "sst2", "--train", str(train), "--dev", str(train), "--init", str(checkpoint),
         "--vocab", str(vocab), "--sequence-length", "32"]
    )  # fmt: skip
    backbone, tokenizer, _ = finetune.load_backbone(args)
    backbone, tokenizer = finetune.prepare_backbone(args, backbone, tokenizer)
    expected = keras_act.convert.load_hf_checkpoint(str(checkpoint))
    for a, b in zip(backbone.weights, expected.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert finetune.build_task(args, backbone, tokenizer).num_classes == 2


# === Bad input: clear errors before training ===


def test_unknown_task(files, tmp_path, capsys):
    argv = finetune_args(files, tmp_path)
    argv[argv.index("sst2")] = "squad"
    fails_before_training(argv, capsys, "Unknown GLUE task 'squad'")


def test_missing_and_empty_files(files, tmp_path, capsys):
    argv = finetune_args(files, tmp_path)
    argv[argv.index(files["train"])] = str(tmp_path / "missing.tsv")
    fails_before_training(argv, capsys, "--train file not found")
    empty = tmp_path / "empty.tsv"
    empty.write_text("sentence\tlabel\n")
    argv = finetune_args(files, tmp_path)
    argv[argv.index(files["train"])] = str(empty)
    fails_before_training(argv, capsys, "has no sst2 examples")
    fails_before_training(finetune_args(files, tmp_path, task="rte"), capsys, "lacks the column")
    argv = finetune_args(files, tmp_path)
    argv[argv.index("--train") : argv.index("--train") + 4] = []
    fails_before_training(argv, capsys, "give --train FILE and --dev FILE")


def test_unknown_tfds_name(files, tmp_path, capsys):
    argv = ["--task", "sst2", "--tfds", "glue/sst2_no_such_config", "--init", files["preset"],
            "--model-dir", str(tmp_path), *QUICK]  # fmt: skip
    fails_before_training(argv, capsys, "Unknown TFDS dataset 'glue/sst2_no_such_config'")
    argv[argv.index("glue/sst2_no_such_config")] = "glue/cola"
    fails_before_training(argv, capsys, "--tfds glue/cola is not the GLUE task sst2")


def test_checkpoints_of_another_architecture(files, tmp_path, capsys):
    # An authors'-layout folder of plain BERT.
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert", "vocab_size": 150}))
    (bert / "model.safetensors").write_bytes(b"")
    argv = finetune_args(files, tmp_path) + ["--init", str(bert), "--vocab", files["vocab"]]
    fails_before_training(
        argv, capsys, "Not an ALBERT or ALBERT-ACT checkpoint: config.json has model_type='bert'"
    )
    # A keras-hub preset of another backbone.
    import keras_hub

    other = tmp_path / "bert_preset"
    keras_hub.models.BertBackbone(
        vocabulary_size=150, num_layers=1, num_heads=1, hidden_dim=4, intermediate_dim=4
    ).save_to_preset(str(other))
    argv = finetune_args(files, tmp_path) + ["--init", str(other)]
    fails_before_training(argv, capsys, "a checkpoint of another architecture")
    # A .keras file of some other model.
    path = tmp_path / "dense.keras"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(path)
    argv = finetune_args(files, tmp_path) + ["--init", str(path)]
    fails_before_training(argv, capsys, "a checkpoint of another architecture")
    # A vocabulary that does not fit the backbone.
    small = train_tiny_vocabulary(tmp_path / "small_vocab", size=100)
    argv = finetune_args(files, tmp_path) + ["--vocab", str(small)]
    fails_before_training(argv, capsys, "does not match the backbone's embeddings")
    # Random weights without a vocabulary.
    argv = finetune_args(files, tmp_path) + ["--init", "albert_act_tiny"]
    fails_before_training(argv, capsys, "needs --vocab")


def test_resuming_another_run_config_is_refused(files, tmp_path, capsys):
    (tmp_path / "run_config.json").write_text(json.dumps({"task": "cola"}))
    fails_before_training(finetune_args(files, tmp_path), capsys, "another fine-tuning run")


def test_defaults_follow_the_model_and_another_vocabulary_is_refused(files, tmp_path, capsys):
    """The README's command on a preset whose max_sequence_length is 64 (the
    main job's): no --sequence-length, so it follows the model. Resuming that
    run with another vocabulary of the same size is refused, naming both."""
    from tests.helpers import write_corpus
    from training.vocab import train_vocabulary

    assert files["backbone"].max_sequence_length == 64
    argv = ["--task", "sst2", "--train", files["train"], "--dev", files["dev"],
            "--model", files["preset"], "--out", str(tmp_path / "run"),
            "--steps", "2", "--batch-size", "8", "--log-every", "1", "--no-save"]  # fmt: skip
    finetune.main(argv)
    out = capsys.readouterr().out
    assert "sequence length 64;" in out and "dev accuracy" in out
    other_corpus = write_corpus(tmp_path / "other.txt", seed=5)
    other = train_vocabulary([other_corpus], 150, tmp_path / "other_vocab", seed=1)
    assert other.read_bytes() != Path(files["vocab"]).read_bytes()
    err = fails_before_training([*argv, "--vocab", str(other)], capsys, "was trained with the vocabulary")
    assert f"the tokenizer of {files['preset']}" in err and str(other) in err
    assert len(err.strip().splitlines()) == 1


def test_a_tsv_that_is_not_utf8_is_named_with_its_line(files, tmp_path, capsys):
    latin1 = tmp_path / "latin1.tsv"
    latin1.write_bytes("sentence\tlabel\na good film\t1\nun caf\u00e9 terrible\t0\n".encode("latin-1"))
    argv = finetune_args(files, tmp_path / "run")
    argv[argv.index(files["train"])] = str(latin1)
    err = fails_before_training(argv, capsys, f"{latin1}, line 3: not UTF-8 (byte 0xe9")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_an_output_folder_that_is_a_file_is_one_line(files, tmp_path, capsys):
    existing = tmp_path / "results.txt"
    existing.write_text("mine")
    for flag in ("--out", "--model-dir"):
        argv = finetune_args(files, tmp_path) + [flag, str(existing)]
        err = fails_before_training(argv, capsys, f"--out {existing} is an existing file, not a folder")
        assert len(err.strip().splitlines()) == 1
    assert existing.read_text() == "mine"
