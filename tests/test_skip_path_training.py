"""Training through `AlbertAct`'s static skip path (outside XLA).

With `training=True` the static path applies dropout to the gathered rows and
its backward pass recomputes each iteration (`keras_act/layers/recompute.py`);
with dropout 0 its gradients equal the dense path's within 1e-4.
"""

import numpy as np
import tensorflow as tf

from tests.helpers import TINY_ACT_CONFIG as CONFIG
from tests.helpers import tiny_act_layer as make_layer


def make_inputs(lengths=(10, 7, 3, 0), length=10, seed=0):
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(len(lengths), length, CONFIG["hidden_dim"])).astype("float32")
    mask = (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype("int32")
    return tf.constant(hidden), mask


def gradients(layer, hidden, mask, skip_halted, training):
    with tf.GradientTape() as tape:
        tape.watch(hidden)
        outputs = layer(hidden, padding_mask=mask, skip_halted=skip_halted, training=training)
        loss = tf.reduce_sum(outputs["sequence_output"] ** 2) + tf.reduce_sum(
            outputs["remainders"]
        )
    return tape.gradient(loss, [hidden] + layer.trainable_variables)


def test_training_gradients_of_the_static_path_equal_the_dense_path():
    layer = make_layer()  # dropout 0
    hidden, mask = make_inputs()
    dense = gradients(layer, hidden, mask, False, training=True)
    static = gradients(layer, hidden, mask, "static", training=True)
    assert len(static) == len(dense) == 1 + len(layer.trainable_variables)
    for variable, expected, got in zip(
        [hidden] + layer.trainable_variables, dense, static, strict=True
    ):
        assert got is not None
        name = getattr(variable, "path", "hidden_states")
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4, err_msg=name)


def test_static_path_applies_dropout_in_training_only():
    layer = make_layer(dropout=0.3)
    hidden, mask = make_inputs()
    dense = layer(hidden, padding_mask=mask, skip_halted=False)
    inference = layer(hidden, padding_mask=mask, skip_halted="static")
    np.testing.assert_array_equal(inference["updates"], dense["updates"])
    np.testing.assert_allclose(
        inference["sequence_output"], dense["sequence_output"], atol=1e-5, rtol=1e-5
    )
    first = layer(hidden, padding_mask=mask, skip_halted="static", training=True)
    second = layer(hidden, padding_mask=mask, skip_halted="static", training=True)
    real = mask == 1
    out = first["sequence_output"].numpy()
    assert np.isfinite(out).all()
    # Dropout changes the real tokens, with a fresh mask per call; padding
    # keeps its input state.
    assert not np.allclose(out[real], dense["sequence_output"].numpy()[real], atol=1e-3)
    assert not np.allclose(out[real], second["sequence_output"].numpy()[real], atol=1e-3)
    np.testing.assert_array_equal(out[~real], hidden.numpy()[~real])
    grads = gradients(layer, hidden, mask, "static", training=True)
    assert all(np.isfinite(g).all() for g in grads)
