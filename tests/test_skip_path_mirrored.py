"""Mirrored and MultiWorkerMirrored training steps through the data-dependent skip path.

`training.trainer.DistributedTrainer` (the loop of `python -m
training.pretrain`) runs one plain-SGD step of `AlbertActPretrainer` over 2
logical CPUs, the backbone's `AlbertAct` on the data-dependent skip path
(`skip_halted="dynamic"`, also what `None` takes there: the default path
runs in tests/test_trainer.py's two-CPU test); the step equals the same
step on one device, and the dense loop's. In a child process: logical
devices must be set before TensorFlow starts its devices. The same step over
`MultiWorkerMirroredStrategy` runs in two worker processes on 127.0.0.1
(each reads every other example of the same stream, so the global batch is
one device's) and equals the dense loop on one device.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import child_environment, free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
VOCAB = 60
GLOBAL_BATCH = 8


def examples():
    from keras_act.data.pretraining_dataset import pretraining_dataset
    from keras_act.data.sentence_order import create_sop_instances

    rng = np.random.default_rng(0)
    documents = [
        [rng.integers(5, VOCAB, size=int(rng.integers(2, 7))).astype(np.int32) for _ in range(4)]
        for _ in range(30)
    ]
    instances = create_sop_instances(documents, 24, seed=0)
    return pretraining_dataset(instances, 24, 4, VOCAB, seed=0)


def one_sgd_step(strategy, skip_halted):
    """One SGD step on the first global batch; returns weights, sums and paths taken."""
    import keras

    import keras_act
    from keras_act.layers import albert_act as albert_act_module
    from training.trainer import DistributedTrainer, distribute_dataset

    taken = []
    original = albert_act_module.AlbertAct._resolve_skip_halted

    def spy(self, *args):
        path = original(self, *args)
        taken.append(path or "dense")
        return path

    albert_act_module.AlbertAct._resolve_skip_halted = spy
    try:
        keras.utils.set_random_seed(0)
        with strategy.scope():
            backbone = keras_act.AlbertActBackbone(
                vocabulary_size=VOCAB,
                embedding_dim=8,
                hidden_dim=16,
                num_heads=2,
                intermediate_dim=32,
                max_layers=6,
                max_sequence_length=24,
                skip_halted=skip_halted,
            )
            halting = backbone.get_layer("albert_act").halting_dense
            rng = np.random.default_rng(1)
            halting.kernel.assign(rng.normal(0.0, 1.0, halting.kernel.shape).astype("float32"))
            halting.bias.assign(np.full(halting.bias.shape, -1.5, "float32"))
            pretrainer = keras_act.AlbertActPretrainer(backbone)
            trainer = DistributedTrainer(
                strategy,
                pretrainer,
                keras.optimizers.SGD(learning_rate=0.5),
                pretrainer.pretraining_losses,
                GLOBAL_BATCH,
                clip_norm=None,
                statistics_fn=pretrainer.depth_statistics,
            )
        before = [v.numpy().tolist() for v in pretrainer.trainable_variables]
        sums = trainer.train_step(iter(distribute_dataset(strategy, examples, GLOBAL_BATCH)))
        after = [v.numpy().tolist() for v in pretrainer.trainable_variables]
    finally:
        albert_act_module.AlbertAct._resolve_skip_halted = original
    return {"before": before, "after": after, "sums": sums, "paths": sorted(set(taken))}


def mirrored_child(out):
    import tensorflow as tf

    from training.strategies import split_cpu

    split_cpu(2)
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    runs = {
        "one_dense": one_sgd_step(one, False),
        "one_dynamic": one_sgd_step(one, "dynamic"),
        "two_dynamic": one_sgd_step(two, "dynamic"),
    }
    Path(out).write_text(json.dumps(runs))


def one_device_dense_child(out):
    """The reference of the multi-worker test: the dense loop on one device."""
    import tensorflow as tf

    run = one_sgd_step(tf.distribute.OneDeviceStrategy("/cpu:0"), False)
    Path(out).write_text(json.dumps(run))


def worker_child(out):
    """One worker of `MultiWorkerMirroredStrategy` (its cluster in `TF_CONFIG`)."""
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # before any other op
    run = one_sgd_step(strategy, "dynamic")
    run["replicas"] = strategy.num_replicas_in_sync
    Path(out).write_text(json.dumps(run))


def assert_step_equals(run, reference, name):
    """Same start, updated weights within 1e-5, loss sums within 1e-5 (relative)."""
    for a, b in zip(reference["before"], run["before"], strict=True):
        np.testing.assert_array_equal(a, b, err_msg=f"{name}: another start")
    for a, b in zip(reference["after"], run["after"], strict=True):
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=0, err_msg=name)
    for key in ("loss", "ponder_cost", "gradient_norm", "examples"):
        np.testing.assert_allclose(
            run["sums"][key], reference["sums"][key], rtol=1e-5, err_msg=f"{name} {key}"
        )


@pytest.mark.large  # ~40 s of CPU (3 traced training steps)
def test_mirrored_step_through_the_skip_path_equals_one_device(tmp_path):
    out = tmp_path / "runs.json"
    result = subprocess.run(
        [sys.executable, "-m", "tests.test_skip_path_mirrored", "mirrored", str(out)],
        cwd=REPO_ROOT,
        env=child_environment(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    runs = json.loads(out.read_text())
    assert runs["one_dense"]["paths"] == ["dense"]
    for name in ("one_dynamic", "two_dynamic"):
        assert runs[name]["paths"] == ["dynamic"], name
    reference = runs["one_dense"]
    # Tokens run more than one iteration (mean ponder cost = updates +
    # remainders), so the skip path has tokens to skip.
    assert reference["sums"]["ponder_cost"] / reference["sums"]["examples"] > 1.5
    moved = max(
        float(np.max(np.abs(np.subtract(a, b))))
        for a, b in zip(reference["after"], reference["before"], strict=True)
    )
    assert moved > 1e-3  # the step is not negligible
    for name in ("one_dynamic", "two_dynamic"):
        assert_step_equals(runs[name], reference, name)


@pytest.mark.large  # ~1 min: three processes, each one traced training step
def test_multi_worker_step_through_the_skip_path_equals_one_device(tmp_path):
    module = [sys.executable, "-m", "tests.test_skip_path_mirrored"]
    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    processes = [
        subprocess.Popen(
            [*module, "one_device_dense", str(tmp_path / "one_dense.json")],
            cwd=REPO_ROOT, env=child_environment(), stderr=subprocess.PIPE, text=True,
        )
    ]
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(
            subprocess.Popen(
                [*module, "worker", str(tmp_path / f"worker{index}.json")],
                cwd=REPO_ROOT,
                env=child_environment(TF_CONFIG=json.dumps(tf_config)),
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for process in processes:
        _, stderr = process.communicate(timeout=900)
        assert process.returncode == 0, stderr[-5000:]
    reference = json.loads((tmp_path / "one_dense.json").read_text())
    assert reference["paths"] == ["dense"]
    assert reference["sums"]["ponder_cost"] / reference["sums"]["examples"] > 1.5
    for index in range(2):
        run = json.loads((tmp_path / f"worker{index}.json").read_text())
        assert run["replicas"] == 2
        assert run["paths"] == ["dynamic"], index
        assert_step_equals(run, reference, f"worker {index}")


CHILDREN = {
    "mirrored": mirrored_child,
    "one_device_dense": one_device_dense_child,
    "worker": worker_child,
}

if __name__ == "__main__":
    CHILDREN[sys.argv[1]](sys.argv[2])
