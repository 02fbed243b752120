"""`AlbertBlock`: the post-layer-norm ALBERT transformer block."""

import keras
import tensorflow as tf

from keras_act.layers.activations import get_activation
from keras_act.layers.initializers import clone_initializer


def _matmul_2d(layer, x, activation=None):
    """Applies an `EinsumDense("abc,cd->abd")` as one 2-D `tf.matmul`.

    Same weights and result as calling the layer, but `[batch * seq, in] x
    [in, out]` is a plain `MatMul`, which TensorFlow's CPU kernels run about
    twice as fast as the `Einsum` kernel on the feed-forward's shapes; and,
    unlike `tf.tensordot`, its gradient in a `tf.while_loop` compiles with XLA
    when the batch size is unknown.
    """
    kernel = tf.cast(layer.kernel, x.dtype)
    shape = tf.shape(x)
    y = tf.matmul(tf.reshape(x, [-1, kernel.shape[0]]), kernel)
    y = tf.nn.bias_add(y, tf.cast(layer.bias, x.dtype))
    if activation is not None:
        y = activation(y)
    return tf.reshape(y, tf.concat([shape[:-1], [kernel.shape[1]]], axis=0))


@keras.saving.register_keras_serializable(package="keras_act")
class AlbertBlock(keras.layers.Layer):
    """One ALBERT transformer block (post-layer-norm, as BERT and ALBERT).

    `x = LayerNorm(x + Dropout(SelfAttention(x)))`, then
    `x = LayerNorm(x + Dropout(Dense(activation(Dense(x)))))`. This computes
    exactly what `keras_hub.layers.TransformerEncoder` computes with
    `normalize_first=False` (and its sublayers carry the same names), but every
    projection is an `EinsumDense`: a `keras.layers.Dense` on a 3-D input of
    unknown batch size lowers to `tf.tensordot`, whose run-time permutations
    cannot be compiled by XLA in the gradient of a `tf.while_loop` (which is
    where `AlbertAct` runs this block). The two feed-forward projections are
    computed as 2-D matmuls on their kernels (see `_matmul_2d`).

    Args:
        num_heads: int, number of attention heads.
        intermediate_dim: int, size of the feed-forward hidden layer.
        activation: str, feed-forward activation (e.g. `"gelu_new"`).
        dropout: float, dropout of attention probabilities and outputs.
        layer_norm_epsilon: float, epsilon of both layer norms.
        kernel_initializer: initializer of the kernels.
        bias_initializer: initializer of the biases.
        **kwargs: other keyword arguments of `keras.layers.Layer`.

    Call arguments:
        inputs: `[batch, seq, hidden]`.
        padding_mask: optional `[batch, seq]`, true/1 for tokens that may be
            attended to.
        training: bool, whether dropout is active.

    Returns:
        The block output, `[batch, seq, hidden]`.
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        activation="gelu_new",
        dropout=0.0,
        layer_norm_epsilon=1e-12,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.activation = activation
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        if hidden_dim % self.num_heads:
            raise ValueError(
                f"The hidden size {hidden_dim} is not divisible by "
                f"num_heads={self.num_heads}."
            )
        self._self_attention_layer = keras.layers.MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=hidden_dim // self.num_heads,
            dropout=self.dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="self_attention_layer",
        )
        self._self_attention_layer.build(query_shape=inputs_shape, value_shape=inputs_shape)
        self._self_attention_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="self_attention_dropout"
        )
        self._self_attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="self_attention_layer_norm",
        )
        self._self_attention_layer_norm.build(inputs_shape)
        self._feedforward_intermediate_dense = keras.layers.EinsumDense(
            "abc,cd->abd",
            output_shape=(None, self.intermediate_dim),
            bias_axes="d",
            activation=get_activation(self.activation),
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="feedforward_intermediate_dense",
        )
        self._feedforward_intermediate_dense.build(inputs_shape)
        self._feedforward_output_dense = keras.layers.EinsumDense(
            "abc,cd->abd",
            output_shape=(None, hidden_dim),
            bias_axes="d",
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="feedforward_output_dense",
        )
        self._feedforward_output_dense.build(
            tuple(inputs_shape[:-1]) + (self.intermediate_dim,)
        )
        self._feedforward_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="feedforward_dropout"
        )
        self._feedforward_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="feedforward_layer_norm",
        )
        self._feedforward_layer_norm.build(inputs_shape)
        self.built = True

    def call(self, inputs, padding_mask=None, training=None):
        attention_mask = None
        if padding_mask is not None:
            # Keys are masked; every query attends to the real tokens.
            attention_mask = keras.ops.cast(padding_mask, "int32")[:, None, :]
        x = self._self_attention_layer(
            query=inputs,
            value=inputs,
            attention_mask=attention_mask,
            training=training,
        )
        x = self._self_attention_dropout(x, training=training)
        x = self._self_attention_layer_norm(x + inputs)
        residual = x
        x = _matmul_2d(self._feedforward_intermediate_dense, x, get_activation(self.activation))
        x = _matmul_2d(self._feedforward_output_dense, x)
        x = self._feedforward_dropout(x, training=training)
        return self._feedforward_layer_norm(x + residual)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "activation": self.activation,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
