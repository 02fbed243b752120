"""Pre-training end to end: strategies, XLA, resume after SIGKILL, bad input.

Each run is a real `training.pretrain` process (strategies need their own
process: logical CPU devices and TF_CONFIG must be set before TensorFlow
starts).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import child_environment, free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
DRIVER = str(REPO_ROOT / "tests" / "pretrain_driver.py")
SMALL = [
    "--steps", "4",
    "--batch-size", "8",
    "--sequence-length", "32",
    "--log-every", "1",
    "--export-dir", "",
    "--seed", "3",
    "--deterministic",
    "--max-layers", "3",
]


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    """A small demo corpus and its trained vocabulary, shared by the runs."""
    from training.demo_corpus import write_demo_corpus
    from training.vocab import train_vocabulary

    folder = tmp_path_factory.mktemp("demo")
    corpus = write_demo_corpus(str(folder / "corpus.txt"), num_documents=200, seed=0)
    vocab = str(train_vocabulary([corpus], 100, str(folder / "vocab"), seed=0))
    return corpus, vocab


def run_driver(out, args, env=None, check=True):
    result = subprocess.run(
        [sys.executable, DRIVER, str(out), *args],
        cwd=REPO_ROOT,
        env=env or child_environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def load_weights(path):
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def assert_weights_close(a, b, atol):
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=atol, rtol=0, err_msg=key)


def losses(stdout):
    return [float(line.split("loss ")[1].split()[0]) for line in stdout.splitlines() if line.startswith("step ")]


def test_mirrored_two_cpus_equals_one_device(tmp_path, demo_files):
    corpus, vocab = demo_files
    common = ["--corpus", corpus, "--vocab", vocab, "--cpu-devices", "2", *SMALL]
    one = run_driver(tmp_path / "one.npz", [*common, "--strategy", "one_device", "--model-dir", str(tmp_path / "one")])
    two = run_driver(tmp_path / "two.npz", [*common, "--strategy", "mirrored", "--model-dir", str(tmp_path / "two")])
    assert "2 replica(s) (MirroredStrategy)" in two.stdout
    assert "1 replica(s) (OneDeviceStrategy)" in one.stdout
    np.testing.assert_allclose(losses(one.stdout), losses(two.stdout), rtol=1e-5)
    assert_weights_close(load_weights(tmp_path / "one.npz"), load_weights(tmp_path / "two.npz"), atol=1e-5)


def gradient_norms(stdout):
    return [float(line.split("gradient_norm ")[1].split()[0]) for line in stdout.splitlines() if line.startswith("step ")]


def test_gradient_accumulation_equals_the_full_batch(tmp_path, demo_files):
    """`--accumulation-steps 2` with `--batch-size 8`: the same losses,
    gradient norms (before clipping: a k-times-too-large gradient shows here
    although clipping and LAMB would hide it in the weights) and weights as
    one batch of 8. The exact SGD check is in test_trainer.py."""
    corpus, vocab = demo_files
    common = ["--corpus", corpus, "--vocab", vocab, "--strategy", "one_device", *SMALL]
    full = run_driver(tmp_path / "full.npz", [*common, "--model-dir", str(tmp_path / "full")])
    acc = run_driver(tmp_path / "acc.npz", [*common, "--accumulation-steps", "2", "--model-dir", str(tmp_path / "acc")])
    assert len(gradient_norms(full.stdout)) == 4
    np.testing.assert_allclose(gradient_norms(acc.stdout), gradient_norms(full.stdout), rtol=1e-4)
    np.testing.assert_allclose(losses(acc.stdout), losses(full.stdout), rtol=1e-5)
    assert_weights_close(load_weights(tmp_path / "full.npz"), load_weights(tmp_path / "acc.npz"), atol=1e-5)


def test_multi_worker_two_processes_end_with_identical_weights(tmp_path):
    # No --corpus or --vocab: both workers write the demo corpus and train the
    # vocabulary in the model dir they share, at the same time.
    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    args = ["--strategy", "multi_worker", *SMALL, "--model-dir", str(tmp_path / "run")]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(
            subprocess.Popen(
                [sys.executable, DRIVER, str(tmp_path / f"worker{index}.npz"), *args],
                cwd=REPO_ROOT,
                env=child_environment(TF_CONFIG=json.dumps(tf_config)),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stdout[-2000:] + stderr[-5000:]
    assert "2 replica(s) (CollectiveAllReduceStrategy)" in outputs[0][0]  # MultiWorkerMirrored
    # Only the chief logs and keeps checkpoints.
    assert losses(outputs[0][0]) and not losses(outputs[1][0])
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith("-4")
    run_files = sorted(path.name for path in (tmp_path / "run").rglob("*") if path.name.startswith("."))
    assert not run_files, f"staging files left behind: {run_files}"
    first, second = load_weights(tmp_path / "worker0.npz"), load_weights(tmp_path / "worker1.npz")
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def test_xla_compiled_step_equals_the_plain_step(tmp_path, demo_files):
    corpus, vocab = demo_files
    common = ["--corpus", corpus, "--vocab", vocab, "--strategy", "one_device", *SMALL]
    plain = run_driver(tmp_path / "plain.npz", [*common, "--model-dir", str(tmp_path / "plain")])
    xla = run_driver(tmp_path / "xla.npz", [*common, "--jit-compile", "--model-dir", str(tmp_path / "xla")])
    np.testing.assert_allclose(losses(plain.stdout), losses(xla.stdout), rtol=1e-4)
    assert_weights_close(load_weights(tmp_path / "plain.npz"), load_weights(tmp_path / "xla.npz"), atol=1e-4)


def test_killed_run_resumes_to_the_same_weights(tmp_path, demo_files):
    corpus, vocab = demo_files
    common = [
        "--corpus", corpus, "--vocab", vocab, "--strategy", "one_device",
        "--steps", "40", "--batch-size", "8", "--sequence-length", "32",
        "--checkpoint-every", "2", "--log-every", "1", "--export-dir", "",
        "--seed", "3", "--deterministic", "--max-layers", "3",
    ]
    run_driver(tmp_path / "straight.npz", [*common, "--model-dir", str(tmp_path / "straight")])

    model_dir = tmp_path / "killed"
    command = [sys.executable, DRIVER, str(tmp_path / "killed.npz"), *common, "--model-dir", str(model_dir)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=child_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    killed_at = None
    for line in process.stdout:
        if line.startswith("step ") and int(line.split()[1].split("/")[0]) >= 13:
            process.send_signal(signal.SIGKILL)
            killed_at = int(line.split()[1].split("/")[0])
            break
        assert time.time() < deadline
    process.wait(timeout=60)
    assert killed_at is not None and process.returncode == -signal.SIGKILL
    latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    assert latest and 10 <= int(latest.rsplit("-", 1)[1]) < 40

    resumed = run_driver(tmp_path / "killed.npz", [*common, "--model-dir", str(model_dir)])
    assert f"Resumed from {latest}" in resumed.stdout
    first_step = int(losses_steps(resumed.stdout)[0])
    assert first_step == int(latest.rsplit("-", 1)[1]) + 1
    assert_weights_close(load_weights(tmp_path / "straight.npz"), load_weights(tmp_path / "killed.npz"), atol=1e-6)


def losses_steps(stdout):
    return [line.split()[1].split("/")[0] for line in stdout.splitlines() if line.startswith("step ")]


def test_pretraining_on_wikipedia_text_lowers_the_mlm_loss(tmp_path, shared_dir):
    corpus = shared_dir / "data" / "corpus" / "wikitext2_wiki.valid.tokens"
    vocab = shared_dir / "data" / "albert_v2_spiece.model"
    result = run_driver(
        tmp_path / "wiki.npz",
        [
            "--corpus", str(corpus), "--vocab", str(vocab), "--strategy", "one_device",
            "--steps", "120", "--batch-size", "16", "--sequence-length", "64",
            "--log-every", "20", "--export-dir", "", "--model-dir", str(tmp_path / "wiki"),
        ],
    )
    mlm = [float(line.split("mlm_loss ")[1].split()[0]) for line in result.stdout.splitlines() if "mlm_loss" in line]
    assert len(mlm) == 6
    assert mlm[-1] < mlm[0] - 1.0, mlm


@pytest.mark.parametrize(
    "content, message",
    [("", "no usable document"), ("the\n\nthe\n", "no sentence pair")],
)
def test_empty_or_unusable_corpus_fails_before_training(tmp_path, demo_files, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    result = run_driver(
        tmp_path / "out.npz",
        ["--corpus", str(path), "--vocab", demo_files[1], "--model-dir", str(tmp_path / "run")],
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "step " not in result.stdout


def test_batch_not_divisible_by_the_replicas_fails_before_training(tmp_path, demo_files):
    corpus, vocab = demo_files
    result = run_driver(
        tmp_path / "out.npz",
        ["--corpus", corpus, "--vocab", vocab, "--cpu-devices", "2", "--strategy", "mirrored",
         "--batch-size", "7", "--model-dir", str(tmp_path / "run"), "--export-dir", ""],
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "global batch size 7 is not divisible by the 2 replicas" in result.stderr
    assert "step " not in result.stdout


def test_unknown_tfds_name_fails_before_training(tmp_path, demo_files):
    result = run_driver(
        tmp_path / "out.npz",
        ["--tfds", "no_such_dataset_xyz", "--vocab", demo_files[1], "--model-dir", str(tmp_path / "run")],
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Unknown TFDS dataset 'no_such_dataset_xyz'" in result.stderr


def test_checkpoint_of_another_architecture_is_refused(tmp_path, demo_files):
    corpus, vocab = demo_files
    common = ["--corpus", corpus, "--vocab", vocab, "--strategy", "one_device", *SMALL, "--model-dir", str(tmp_path / "run")]
    run_driver(tmp_path / "a.npz", common)
    result = run_driver(tmp_path / "b.npz", [*common, "--max-layers", "5"], check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "another architecture" in result.stderr and "max_layers" in result.stderr
    assert "step " not in result.stdout


def test_pretrain_on_tfds_mock_data(tmp_path, demo_files):
    """The TFDS code path, on `tfds.testing.mock_data` (no download)."""
    import tensorflow_datasets as tfds

    from training import pretrain

    # In-process: no --deterministic, which would switch TF op determinism on
    # for the rest of the test session (and with it Keras' XLA compilation).
    flags = [flag for flag in SMALL if flag != "--deterministic"]
    args = pretrain.build_parser().parse_args(
        ["--tfds", "glue/sst2", "--vocab", demo_files[1], *flags, "--model-dir", str(tmp_path / "run")]
    )
    with tfds.testing.mock_data(num_examples=64):
        pretrain.run(args)
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith("-4")


def test_rerun_corrupt_checkpoint_leftovers_and_another_vocabulary(tmp_path, demo_files):
    """One run folder through what happens to real ones:

    - run again once finished: nothing trained, no second identical export;
    - its latest checkpoint truncated (a full disk) and leftovers of a killed
      run beside it: the next run warns naming the bad checkpoint, resumes
      from the one before, and removes the stale leftovers; settings not
      given again (--sequence-length) follow the recorded run;
    - another vocabulary of the same size: refused, naming both.
    """
    from training.demo_corpus import write_demo_corpus
    from training.vocab import train_vocabulary

    corpus, vocab = demo_files
    run_dir, export_dir = tmp_path / "run", tmp_path / "export"
    common = [
        "--corpus", corpus, "--strategy", "one_device", "--batch-size", "8",
        "--log-every", "1", "--seed", "3", "--max-layers", "3", "--checkpoint-every", "2",
        "--out", str(run_dir), "--export-dir", str(export_dir),
    ]  # fmt: skip
    first = run_driver(tmp_path / "a.npz", [*common, "--vocab", vocab, "--steps", "4", "--sequence-length", "32"])
    assert f"tensorboard --logdir {run_dir / 'logs'}" in first.stdout
    assert [p.name for p in export_dir.iterdir() if p.is_dir()] == ["1"]

    again = run_driver(tmp_path / "b.npz", [*common, "--vocab", vocab, "--steps", "4", "--sequence-length", "32"])
    assert losses_steps(again.stdout) == []
    assert "already at" in again.stdout and "not exported again" in again.stdout
    assert sorted(p.name for p in export_dir.iterdir() if p.is_dir()) == ["1"]

    checkpoints = run_dir / "checkpoints"
    (data,) = checkpoints.glob("ckpt-4.data-*")
    data.write_bytes(data.read_bytes()[:100])
    stale = [checkpoints / "ckpt-6_temp", run_dir / ".writing-999999999@elsewhere~-x.keras"]
    stale[0].mkdir()
    (stale[0] / "part-00000-of-00001.index").write_bytes(b"")
    stale[1].write_bytes(b"PK")
    old = time.time() - 3600
    for path in (stale[0] / "part-00000-of-00001.index", *stale):
        os.utime(path, (old, old))
    # No --vocab nor --sequence-length: the recorded run's.
    resumed = run_driver(tmp_path / "c.npz", [*common, "--steps", "6"])
    assert "ckpt-4 is unreadable" in resumed.stderr and "Traceback" not in resumed.stderr
    assert f"Resumed from {checkpoints / 'ckpt-2'} at step 2" in resumed.stdout
    assert losses_steps(resumed.stdout) == ["3", "4", "5", "6"]
    assert not any(path.exists() for path in stale)
    assert sorted(p.name for p in export_dir.iterdir() if p.is_dir()) == ["1", "2"]

    other_corpus = write_demo_corpus(str(tmp_path / "other.txt"), num_documents=200, seed=7)
    other = str(train_vocabulary([other_corpus], 100, str(tmp_path / "other_vocab"), seed=1))
    refused = run_driver(tmp_path / "d.npz", [*common, "--vocab", other, "--steps", "8"], check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert vocab in refused.stderr and other in refused.stderr
    assert losses_steps(refused.stdout) == []
