"""The distributed training loop in-process: mixed precision, schedules."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_act
from training.optimizers import WarmupDecay, create_optimizer
from training.pretraining_data import create_sop_instances, pretraining_dataset
from training.trainer import CheckpointKeeper, DistributedTrainer, distribute_dataset, summarize

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
