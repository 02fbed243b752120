"""`AlbertBlock` computes exactly keras-hub's post-LN `TransformerEncoder`."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras_hub.layers import TransformerEncoder
from keras_hub.src.tests.test_case import TestCase

from keras_act.layers import AlbertBlock
from keras_act.layers.activations import get_activation


@pytest.mark.parametrize("activation", ["gelu_new", "gelu", "relu"])
def test_matches_keras_hub_transformer_encoder(activation):
    keras.utils.set_random_seed(0)
    shape = (3, 9, 32)
    block = AlbertBlock(
        num_heads=4,
        intermediate_dim=48,
        activation=activation,
        layer_norm_epsilon=1e-12,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.3),
        bias_initializer=keras.initializers.RandomNormal(stddev=0.1),
    )
    block.build(shape)
    encoder = TransformerEncoder(
        intermediate_dim=48,
        num_heads=4,
        activation=get_activation(activation),
        layer_norm_epsilon=1e-12,
    )
    encoder.build(shape)
    by_path = {w.path.split("/", 1)[1]: w for w in encoder.weights}
    assert sorted(by_path) == sorted(w.path.split("/", 1)[1] for w in block.weights)
    for weight in block.weights:
        by_path[weight.path.split("/", 1)[1]].assign(weight)

    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    mask = np.array([[1] * 9, [1] * 5 + [0] * 4, [1] * 2 + [0] * 7])
    np.testing.assert_allclose(
        block(x, padding_mask=mask), encoder(x, padding_mask=mask), atol=1e-5, rtol=1e-5
    )


def test_xla_gradient_with_unknown_batch_size():
    """The reason for EinsumDense: XLA-compiled gradients in a while loop."""
    block = AlbertBlock(num_heads=2, intermediate_dim=16)
    block.build((None, None, 8))

    @tf.function(
        jit_compile=True,
        input_signature=[tf.TensorSpec([None, None, 8], tf.float32)],
    )
    def grad(x):
        with tf.GradientTape() as tape:
            y = tf.while_loop(
                lambda i, h: i < 3, lambda i, h: (i + 1, block(h)), (0, x), maximum_iterations=3
            )[1]
            loss = tf.reduce_sum(y**2)
        return tape.gradient(loss, block.trainable_variables)

    grads = grad(np.ones((2, 5, 8), "float32"))
    assert all(np.all(np.isfinite(g)) for g in grads)


def test_get_config_round_trip():
    block = AlbertBlock(num_heads=2, intermediate_dim=16, activation="gelu", dropout=0.1)
    config = block.get_config()
    assert AlbertBlock.from_config(config).get_config() == config


class AlbertBlockHarnessTest(TestCase):
    def test_layer_harness(self):
        self.run_layer_test(
            cls=AlbertBlock,
            init_kwargs=dict(num_heads=2, intermediate_dim=16),
            # A tensor, as keras-hub's own tests pass: `compute_output_spec`
            # gives numpy inputs no shape.
            input_data=tf.random.stateless_normal((2, 5, 8), seed=(0, 1)),
            expected_output_shape=(2, 5, 8),
            # Attention (8), feed-forward (4) and two layer norms (4).
            expected_num_trainable_weights=16,
        )
