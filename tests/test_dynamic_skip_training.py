"""Training through `AlbertAct`'s data-dependent skip path (`skip_halted="dynamic"`).

Outside XLA the data-dependent path trains: with `training=True` the block's
own dropout layers act on the running tokens' rows, and gradients flow. With
dropout 0 a training step equals the dense path's (`updates` exactly, outputs
within 1e-5, gradients within 1e-4 of the largest gradient) on a padded
batch, in eager mode, in `tf.function`, in mixed precision and in the
pretrainer's `fit`.
"""

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import TINY_ACT_CONFIG as CONFIG
from tests.helpers import tiny_act_layer as make_layer

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
            np.asarray(g, "float64"), np.asarray(e, "float64"),
            rtol=rtol, atol=rtol * scale, err_msg=name,
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
    np.testing.assert_allclose(
        inference["sequence_output"], dense["sequence_output"], **TOLERANCE
    )
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
