"""Training through `AlbertAct`'s data-dependent skip path (`skip_halted="dynamic"`).

Outside XLA the data-dependent path trains: with `training=True` the block's
own dropout layers act on the running tokens' rows, and gradients flow. With
dropout 0 a training step equals the dense path's (`updates` exactly, outputs
within 1e-5, gradients within 1e-4 of the largest gradient) on a padded
batch, in eager mode, in `tf.function`, in mixed precision and in the
pretrainer's `fit`.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_act
from keras_act.layers import albert_act as albert_act_module
from tests.helpers import TINY_ACT_CONFIG as CONFIG
from tests.helpers import tiny_act_layer as make_layer
from tests.helpers import tiny_backbone

TOLERANCE = dict(atol=1e-5, rtol=1e-5)


def make_inputs(lengths=(10, 7, 3, 0), length=10, seed=0):
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(len(lengths), length, CONFIG["hidden_dim"])).astype("float32")
    mask = (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype("int32")
    return tf.constant(hidden), mask


def training_gradients(layer, hidden, mask, skip_halted):
    """The outputs of a training call and the gradients of a loss that reads them all."""
    with tf.GradientTape() as tape:
        tape.watch(hidden)
        outputs = layer(hidden, padding_mask=mask, skip_halted=skip_halted, training=True)
        loss = (
            tf.reduce_sum(tf.cast(outputs["sequence_output"], "float32") ** 2)
            + tf.reduce_sum(outputs["remainders"])
            + tf.reduce_sum(outputs["halting_probability"])
        )
    return outputs, tape.gradient(loss, [hidden] + layer.trainable_variables)


def assert_same_gradients(got, expected, names, rtol):
    """Each gradient within `rtol` of the largest gradient's magnitude.

    (Some gradients are exactly 0 in exact arithmetic, e.g. the key bias's:
    softmax ignores a constant added to every logit; both paths give float
    noise there, so the tolerance is relative to the gradients' scale.)
    """
    scale = max(float(np.max(np.abs(g))) for g in expected)
    assert scale > 0
    for name, g, e in zip(names, got, expected, strict=True):
        assert g is not None, name
        np.testing.assert_allclose(
            np.asarray(g, "float64"),
            np.asarray(e, "float64"),
            rtol=rtol,
            atol=rtol * scale,
            err_msg=name,
        )


@pytest.mark.parametrize("mode", ["eager", "tf.function"])
def test_training_through_the_dynamic_path_equals_the_dense_path(mode):
    layer = make_layer()  # dropout 0
    hidden, mask = make_inputs()
    step = training_gradients
    if mode == "tf.function":
        step = tf.function(training_gradients, reduce_retracing=True)
    dense, dense_gradients = step(layer, hidden, mask, False)
    skip, skip_gradients = step(layer, hidden, mask, "dynamic")
    # The depths vary (else the test could not tell the paths apart).
    assert len(np.unique(dense["updates"].numpy()[mask == 1])) >= 3
    np.testing.assert_array_equal(skip["updates"], dense["updates"])
    for key in ("sequence_output", "remainders", "halting_probability"):
        np.testing.assert_allclose(skip[key], dense[key], err_msg=key, **TOLERANCE)
    names = ["hidden_states"] + [v.path for v in layer.trainable_variables]
    assert_same_gradients(skip_gradients, dense_gradients, names, rtol=1e-4)


def dropout_layers(layer):
    block = layer.transformer_block
    return (
        block._self_attention_layer._dropout_layer,
        block._self_attention_dropout,
        block._feedforward_dropout,
    )


def test_dropout_acts_on_the_running_rows_in_training_only():
    layer = make_layer(dropout=0.3)
    hidden, mask = make_inputs()
    dense = layer(hidden, padding_mask=mask, skip_halted=False)
    inference = layer(hidden, padding_mask=mask, skip_halted="dynamic")
    np.testing.assert_array_equal(inference["updates"], dense["updates"])
    np.testing.assert_allclose(inference["sequence_output"], dense["sequence_output"], **TOLERANCE)
    # The dense path's own dropout layers draw the masks: their seed
    # generators advance.
    states = [d.seed_generator.state.numpy().copy() for d in dropout_layers(layer)]
    first = layer(hidden, padding_mask=mask, skip_halted="dynamic", training=True)
    for before, d in zip(states, dropout_layers(layer), strict=True):
        assert not np.array_equal(before, d.seed_generator.state.numpy()), d.name
    second = layer(hidden, padding_mask=mask, skip_halted="dynamic", training=True)
    real = mask == 1
    out = first["sequence_output"].numpy()
    assert np.isfinite(out).all()
    assert not np.allclose(out[real], dense["sequence_output"].numpy()[real], atol=1e-3)
    assert not np.allclose(out[real], second["sequence_output"].numpy()[real], atol=1e-3)
    # Padding keeps its input state.
    np.testing.assert_array_equal(out[~real], hidden.numpy()[~real])
    _, gradients = training_gradients(layer, hidden, mask, "dynamic")
    assert all(np.isfinite(np.asarray(g)).all() for g in gradients)


# Half precision moves outputs and gradients by as much as these on the dense
# path itself (measured against float32 on these inputs: bfloat16 2.5e-2 /
# 1.2e-2, float16 2.3e-3 / 1.4e-3); the skip path must stay within them.
HALF_PRECISION_TOLERANCE = {
    "mixed_bfloat16": dict(outputs=5e-2, gradients=5e-2),
    "mixed_float16": dict(outputs=1e-2, gradients=5e-3),
}


def largest_difference(got, expected, scale=1.0):
    return (
        max(
            float(np.max(np.abs(np.asarray(g, "float32") - np.asarray(e, "float32"))))
            for g, e in zip(got, expected, strict=True)
        )
        / scale
    )


@pytest.mark.parametrize("policy", sorted(HALF_PRECISION_TOLERANCE))
def test_training_in_mixed_precision_stays_within_the_dense_paths_tolerance(policy):
    tolerance = HALF_PRECISION_TOLERANCE[policy]
    reference = make_layer()
    hidden, mask = make_inputs()
    exact, exact_gradients = training_gradients(reference, hidden, mask, False)
    layer = make_layer(dtype=policy)
    layer.set_weights(reference.get_weights())
    dense, dense_gradients = training_gradients(layer, hidden, mask, False)
    skip, skip_gradients = training_gradients(layer, hidden, mask, "dynamic")
    assert skip["sequence_output"].dtype == dense["sequence_output"].dtype == layer.compute_dtype
    np.testing.assert_array_equal(skip["updates"], dense["updates"])
    scale = max(float(np.max(np.abs(g))) for g in exact_gradients)
    for name, run, gradients in (
        ("dense", dense, dense_gradients),
        ("skip", skip, skip_gradients),
    ):
        outputs_error = largest_difference([run["sequence_output"]], [exact["sequence_output"]])
        assert outputs_error < tolerance["outputs"], (name, outputs_error)
        gradients_error = largest_difference(gradients, exact_gradients, scale)
        assert gradients_error < tolerance["gradients"], (name, gradients_error)
    assert largest_difference(skip_gradients, dense_gradients, scale) < tolerance["gradients"]


def test_float16_step_with_a_loss_scale_optimizer_equals_the_dense_path():
    """`mixed_float16` training as Keras does it: the loss scaled by
    `keras.optimizers.LossScaleOptimizer`, gradients unscaled, one SGD step."""
    reference = make_layer()
    hidden, mask = make_inputs()
    steps = {}
    for skip_halted in (False, "dynamic"):
        layer = make_layer(dtype="mixed_float16")
        layer.set_weights(reference.get_weights())
        optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.01))
        with tf.GradientTape() as tape:
            outputs = layer(hidden, padding_mask=mask, skip_halted=skip_halted, training=True)
            loss = tf.reduce_mean(tf.cast(outputs["sequence_output"], "float32") ** 2)
            loss += 1e-2 * tf.reduce_mean(outputs["updates"] + outputs["remainders"])
            scaled = optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, layer.trainable_variables)
        assert float(scaled) > 1000 * float(loss)  # the loss really is scaled
        optimizer.apply(gradients, layer.trainable_variables)
        steps[skip_halted] = [
            v.numpy() - w
            for v, w in zip(layer.trainable_variables, reference.get_weights(), strict=True)
        ]
    scale = max(float(np.max(np.abs(d))) for d in steps[False])
    assert scale > 0
    assert largest_difference(steps["dynamic"], steps[False], scale) < 5e-3


@pytest.fixture
def path_spy(monkeypatch):
    """Records the path each `AlbertAct` call (or trace) takes."""
    taken = []
    original = albert_act_module.AlbertAct._resolve_skip_halted

    def spy(self, *args):
        skip = original(self, *args)
        taken.append(skip or "dense")
        return skip

    monkeypatch.setattr(albert_act_module.AlbertAct, "_resolve_skip_halted", spy)
    return taken


def pretraining_batch(vocabulary_size, seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array([12, 9, 5, 12])
    mask = (np.arange(12)[None, :] < lengths[:, None]).astype("int32")
    features = {
        "token_ids": rng.integers(5, vocabulary_size, size=mask.shape).astype("int32") * mask,
        "segment_ids": (np.arange(12)[None, :] >= lengths[:, None] // 2).astype("int32") * mask,
        "padding_mask": mask,
        "mask_positions": np.array([[1, 3], [2, 4], [1, 2], [5, 7]], "int32"),
    }
    targets = {
        "mask_ids": rng.integers(5, vocabulary_size, size=(4, 2)).astype("int32"),
        "mask_weights": np.ones((4, 2), "float32"),
        "sop_label": np.array([0, 1, 1, 0], "int32"),
    }
    return features, targets


def test_pretrainer_fit_step_through_the_dynamic_path_equals_the_dense_path(path_spy):
    vocabulary_size = 60
    features, targets = pretraining_batch(vocabulary_size)
    runs = {}
    for skip_halted in (False, "dynamic"):
        backbone = tiny_backbone(vocabulary_size, seed=3, skip_halted=skip_halted)
        halting = backbone.get_layer("albert_act").halting_dense
        halting.kernel.assign(np.random.default_rng(1).normal(0, 1, halting.kernel.shape))
        halting.bias.assign([-1.5])  # depths vary from 1 to the cap
        pretrainer = keras_act.AlbertActPretrainer(backbone)
        before = [v.numpy() for v in pretrainer.trainable_variables]
        pretrainer.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
        path_spy.clear()
        history = pretrainer.fit(features, targets, batch_size=4, epochs=1, verbose=0)
        # The training step (traced once) took the path asked for.
        assert set(path_spy) == {"dense" if skip_halted is False else "dynamic"}
        runs[skip_halted] = (
            history.history,
            [v.numpy() - b for v, b in zip(pretrainer.trainable_variables, before, strict=True)],
        )
    (dense_history, dense_step), (skip_history, skip_step) = runs[False], runs["dynamic"]
    assert dense_history["mean_updates"][0] > 1.5
    for key in ("loss", "mean_updates", "ponder_cost"):
        np.testing.assert_allclose(skip_history[key], dense_history[key], rtol=1e-5, err_msg=key)
    scale = max(float(np.max(np.abs(d))) for d in dense_step)
    assert scale > 0
    assert largest_difference(skip_step, dense_step, scale) < 1e-4


def dropout_statistics(layer, hidden, mask, skip_halted, calls=60):
    """Over `calls` training calls: the mean |change| dropout makes to the real
    tokens' outputs and their mean depth, each with its standard error."""
    real = mask == 1
    reference = layer(hidden, padding_mask=mask, skip_halted=False)["sequence_output"].numpy()
    call = tf.function(
        lambda h, m: layer(h, padding_mask=m, skip_halted=skip_halted, training=True)
    )
    change, depth = [], []
    for _ in range(calls):
        outputs = call(hidden, mask)
        change.append(np.abs(outputs["sequence_output"].numpy() - reference)[real].mean())
        depth.append(outputs["updates"].numpy()[real].mean())
    return [(np.mean(x), np.std(x) / np.sqrt(calls)) for x in (change, depth)]


def test_dropout_statistics_equal_the_dense_paths():
    """Dropout 0.2: the dense and data-dependent paths change the outputs by
    as much on average (0.147 vs 0.145 here, standard error 0.001) and give
    the same mean depth. Leaving out one dropout site (the attention
    probabilities) moves the first figure to 0.124, 18 standard errors."""
    layer = make_layer(dropout=0.2)
    hidden, mask = make_inputs()
    dense = dropout_statistics(layer, hidden, mask, False)
    skip = dropout_statistics(layer, hidden, mask, "dynamic")
    for name, (dense_mean, dense_error), (skip_mean, skip_error) in zip(
        ("output change", "mean depth"), dense, skip, strict=True
    ):
        assert abs(skip_mean - dense_mean) < 4 * np.hypot(dense_error, skip_error), name
