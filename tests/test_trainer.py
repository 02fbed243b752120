"""The distributed training loop in-process: mixed precision, schedules,
gradient accumulation (and, in a child process, over 2 logical CPUs)."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_act
from keras_act.data.pretraining_dataset import pretraining_dataset
from keras_act.data.sentence_order import create_sop_instances
from tests.helpers import child_environment
from training.optimizers import WarmupDecay, create_optimizer
from training.trainer import CheckpointKeeper, DistributedTrainer, distribute_dataset, summarize
from training.training_loop import TrainingLoop

VOCAB = 60


def examples():
    rng = np.random.default_rng(0)
    documents = [[rng.integers(5, VOCAB, size=6).astype(np.int32) for _ in range(4)] for _ in range(30)]
    instances = create_sop_instances(documents, 24, seed=0)
    return pretraining_dataset(instances, 24, 4, VOCAB, seed=0)


def make_trainer(strategy, optimizer_name="lamb", loss_scale=False, jit_compile=False):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        backbone = keras_act.AlbertActBackbone(
            vocabulary_size=VOCAB, embedding_dim=8, hidden_dim=16, num_heads=2,
            intermediate_dim=32, max_layers=3, max_sequence_length=24,
        )
        pretrainer = keras_act.AlbertActPretrainer(backbone)
        optimizer = create_optimizer(
            optimizer_name, 1e-2, total_steps=10, warmup_steps=2, loss_scaling=loss_scale
        )
        trainer = DistributedTrainer(
            strategy, pretrainer, optimizer, pretrainer.pretraining_losses, 8,
            jit_compile=jit_compile, statistics_fn=pretrainer.depth_statistics,
        )
    return trainer


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_training_steps(policy):
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    keras.config.set_dtype_policy(policy)
    try:
        trainer = make_trainer(strategy, loss_scale=policy == "mixed_float16")
    finally:
        keras.config.set_dtype_policy("float32")
    before = [v.numpy().copy() for v in trainer.model.trainable_variables]
    iterator = iter(distribute_dataset(strategy, examples, 8))
    for _ in range(3):
        sums = trainer.train_step(iterator)
        assert np.isfinite(sums["loss"])
    means = summarize(sums)
    assert 1.0 <= means["updates/all"] <= 3.0
    changed = [not np.array_equal(a, v.numpy()) for a, v in zip(before, trainer.model.trainable_variables, strict=True)]
    assert all(changed[:3]) and sum(changed) > len(changed) // 2
    for variable in trainer.model.trainable_variables:
        assert variable.dtype == "float32"
    if policy == "mixed_float16":
        assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
        assert trainer.optimizer.iterations.numpy() >= 1
    # Every step counts, applied or skipped for overflow.
    assert trainer.steps_done.numpy() == 3


def test_adamw_and_lamb_both_train():
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    for name in ("adamw", "lamb"):
        trainer = make_trainer(strategy, name)
        iterator = iter(distribute_dataset(strategy, examples, 8))
        first = trainer.train_step(iterator)["loss"]
        for _ in range(8):
            last = trainer.train_step(iterator)["loss"]
        assert last < first, name


def test_warmup_then_linear_decay():
    schedule = WarmupDecay(1.0, warmup_steps=4, total_steps=12)
    values = [float(schedule(step)) for step in range(14)]
    np.testing.assert_allclose(values[:5], [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(values[8], 0.5)
    assert values[12] == values[13] == 0.0
    assert WarmupDecay.from_config(schedule.get_config()).get_config() == schedule.get_config()
    with pytest.raises(ValueError, match="total_steps"):
        WarmupDecay(1.0, warmup_steps=0, total_steps=0)
    with pytest.raises(ValueError, match="Unknown optimizer"):
        create_optimizer("sgd", 1e-3, 10)


def test_checkpoint_keeper_restores_model_and_optimizer(tmp_path):
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    trainer = make_trainer(strategy)
    keeper = CheckpointKeeper(strategy, str(tmp_path), model=trainer.model, optimizer=trainer.optimizer)
    assert keeper.restore() is None
    iterator = iter(distribute_dataset(strategy, examples, 8))
    trainer.train_step(iterator)
    keeper.save(1)
    saved = [v.numpy().copy() for v in trainer.model.weights]
    trainer.train_step(iterator)
    other = make_trainer(strategy)
    restored = CheckpointKeeper(strategy, str(tmp_path), model=other.model, optimizer=other.optimizer).restore()
    assert restored.endswith("-1")
    assert int(other.optimizer.iterations.numpy()) == 1
    for a, b in zip(saved, other.model.weights, strict=True):
        np.testing.assert_array_equal(a, b.numpy())


# === Gradient accumulation: the gradient of the mean over the global batch ===

REPO_ROOT = Path(__file__).resolve().parents[1]
GLOBAL_BATCH = 8


def one_sgd_step(strategy, accumulation_steps, loss_scale=False):
    """One plain-SGD step (no clipping) on the first global batch of
    `examples()`; returns the new weights and the logged gradient norm."""
    keras.utils.set_random_seed(0)
    with strategy.scope():
        backbone = keras_act.AlbertActBackbone(
            vocabulary_size=VOCAB, embedding_dim=8, hidden_dim=16, num_heads=2,
            intermediate_dim=32, max_layers=3, max_sequence_length=24, dropout=0.0,
        )
        pretrainer = keras_act.AlbertActPretrainer(backbone)
        optimizer = keras.optimizers.SGD(learning_rate=0.5)
        if loss_scale:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        trainer = DistributedTrainer(
            strategy, pretrainer, optimizer, pretrainer.pretraining_losses, GLOBAL_BATCH,
            accumulation_steps=accumulation_steps, clip_norm=None,
        )
    before = [v.numpy().copy() for v in pretrainer.trainable_variables]
    dataset = distribute_dataset(strategy, examples, GLOBAL_BATCH, accumulation_steps)
    sums = trainer.train_step(iter(dataset))
    after = [v.numpy() for v in pretrainer.trainable_variables]
    return before, after, sums


def assert_same_step(full, accumulated, atol=1e-6, rtol=1e-5):
    (before, after, sums), (before_k, after_k, sums_k) = full, accumulated
    for a, b in zip(before, before_k, strict=True):
        np.testing.assert_array_equal(a, b)  # the same start
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(after, before, strict=True))
    assert moved > 1e-3  # the step is not negligible: a wrong scale shows
    for a, b in zip(after, after_k, strict=True):
        np.testing.assert_allclose(b, a, atol=atol, rtol=0)
    assert sums_k["gradient_norm"] == pytest.approx(sums["gradient_norm"], rel=rtol)
    assert sums_k["examples"] == sums["examples"] == GLOBAL_BATCH
    assert sums_k["loss"] == pytest.approx(sums["loss"], rel=rtol)


@pytest.mark.parametrize("accumulation_steps", [2, 4])
def test_accumulated_sgd_step_equals_the_full_batch_step(accumulation_steps):
    """Plain SGD, no clipping: k micro-batches of 8/k move the weights as
    far as one batch of 8, and log the same gradient norm."""
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    assert_same_step(one_sgd_step(strategy, 1), one_sgd_step(strategy, accumulation_steps))


def test_accumulated_float16_step_equals_the_full_batch_step():
    """With dynamic loss scaling, the scaled loss of each micro-batch is
    still the mean over the global batch."""
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    keras.config.set_dtype_policy("mixed_float16")
    try:
        full = one_sgd_step(strategy, 1, loss_scale=True)
        accumulated = one_sgd_step(strategy, 2, loss_scale=True)
    finally:
        keras.config.set_dtype_policy("float32")
    assert_same_step(full, accumulated, atol=2e-3, rtol=2e-3)


def mirrored_child(out):
    """The steps of the two-logical-CPU test, run in a child process
    (`python -m tests.test_trainer OUT`): logical devices must be set
    before TensorFlow starts its devices. Writes the runs as JSON to `out`."""
    from training.strategies import split_cpu

    split_cpu(2)
    runs = {}
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    for name, strategy, k in (("one_1", one, 1), ("two_1", two, 1), ("two_2", two, 2)):
        before, after, sums = one_sgd_step(strategy, k)
        runs[name] = {
            "before": [w.tolist() for w in before],
            "after": [w.tolist() for w in after],
            "sums": sums,
        }
    Path(out).write_text(json.dumps(runs))


def test_accumulated_sgd_step_over_two_logical_cpus_equals_one_device(tmp_path):
    """MirroredStrategy over 2 logical CPUs with 2 micro-batches per step:
    the same step as one device on the full batch (in a child process:
    logical devices must be set before TensorFlow starts)."""
    out = tmp_path / "runs.json"
    result = subprocess.run(
        [sys.executable, "-m", "tests.test_trainer", str(out)],
        cwd=REPO_ROOT, env=child_environment(), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    runs = json.loads(out.read_text())

    def unpack(run):
        return ([np.asarray(w) for w in run["before"]], [np.asarray(w) for w in run["after"]], run["sums"])

    assert_same_step(unpack(runs["one_1"]), unpack(runs["two_1"]))
    assert_same_step(unpack(runs["one_1"]), unpack(runs["two_2"]))


def test_batch_not_divisible_into_micro_batches_and_replicas_is_refused():
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with pytest.raises(ValueError, match="global batch size 8 is not divisible by the 3 accumulation steps"):
        distribute_dataset(strategy, examples, 8, 3)


def test_a_logged_window_averages_the_gradient_norm_over_its_steps():
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    trainer = make_trainer(strategy)
    iterator = iter(distribute_dataset(strategy, examples, 8))
    steps = [trainer.train_step(iterator) for _ in range(3)]
    window = {name: sum(step[name] for step in steps) for name in steps[0]}
    assert window["steps"] == 3
    assert summarize(window)["gradient_norm"] == pytest.approx(
        np.mean([step["gradient_norm"] for step in steps])
    )


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_latest_checkpoint_falls_back_to_the_one_before(tmp_path):
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    trainer = make_trainer(strategy)
    keeper = CheckpointKeeper(strategy, str(tmp_path), model=trainer.model, optimizer=trainer.optimizer)
    iterator = iter(distribute_dataset(strategy, examples, 8))
    trainer.train_step(iterator)
    keeper.save(1)
    saved = [v.numpy().copy() for v in trainer.model.weights]
    trainer.train_step(iterator)
    keeper.save(2)
    (data,) = tmp_path.glob("ckpt-2.data-*")
    truncate(data)  # as a full disk or a killed copy leaves it

    other = make_trainer(strategy)
    with pytest.warns(UserWarning, match=r"Checkpoint .*ckpt-2 is unreadable") as caught:
        restored = CheckpointKeeper(strategy, str(tmp_path), model=other.model, optimizer=other.optimizer).restore()
    assert "Read less bytes" in str(caught[0].message)
    assert restored.endswith("ckpt-1")
    assert int(other.optimizer.iterations.numpy()) == 1
    for a, b in zip(saved, other.model.weights, strict=True):
        np.testing.assert_array_equal(a, b.numpy())

    (data,) = tmp_path.glob("ckpt-1.data-*")
    truncate(data)
    third = make_trainer(strategy)
    keeper = CheckpointKeeper(strategy, str(tmp_path), model=third.model, optimizer=third.optimizer)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"No readable checkpoint in .*ckpt-2 .*ckpt-1"):
        keeper.restore()


def scalars_logged(folder):
    """`{(step, tag): value}` of the TensorBoard scalars written under `folder`."""
    values = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                values[(event.step, value.tag)] = float(tf.make_ndarray(value.tensor))
    return values


def test_the_training_loop_logs_windows_checkpoints_and_resumes(tmp_path, capsys):
    """The loop of both jobs: a line and TensorBoard scalars per window (and
    at the last step), the schedule's rate of each logged step, checkpoints
    every N steps and at the last, the hook after every step; a new loop on
    the same folder resumes at the last checkpoint."""
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    trainer = make_trainer(strategy)
    with strategy.scope():
        loop = TrainingLoop(strategy, trainer, str(tmp_path), 5, model=trainer.model, optimizer=trainer.optimizer)
    assert loop.restore() is None
    seen = []
    last = loop.run(
        examples, 3, log_every=2, checkpoint_every=2, summarize_fn=summarize,
        log_line=lambda step, means: f"step {step} loss {means['loss']:.4f}",
        scalar_prefix="train/", after_step=seen.append,
    )
    assert last == 3 and seen == [1, 2, 3]
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in lines] == ["2", "3"]
    assert all(line.endswith("examples/s)") for line in lines)
    checkpoints = tf.train.get_checkpoint_state(str(tmp_path / "checkpoints"))
    assert [p.rsplit("-", 1)[1] for p in checkpoints.all_model_checkpoint_paths] == ["2", "3"]
    scalars = scalars_logged(tmp_path / "logs")
    assert {step for step, _ in scalars} == {2, 3}
    assert {(2, "train/loss"), (3, "train/mlm_accuracy"), (3, "train/gradient_norm")} <= set(scalars)
    # Warm-up over 2 steps, then decay: each log has the rate of its step.
    assert scalars[(2, "train/learning_rate")] > scalars[(3, "train/learning_rate")] > 0

    other = make_trainer(strategy)
    with strategy.scope():
        resumed = TrainingLoop(strategy, other, str(tmp_path), 5, model=other.model, optimizer=other.optimizer)
    assert resumed.restore().endswith("ckpt-3") and resumed.step == 3
    for a, b in zip(trainer.model.weights, other.model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


if __name__ == "__main__":
    mirrored_child(sys.argv[1])
