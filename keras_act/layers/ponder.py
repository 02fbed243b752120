"""`PonderCost`: the ACT ponder cost of fine-tuning tasks, as a Keras loss."""

import keras
import tensorflow as tf

from keras_act.checks import check_non_negative_float


def ponder_cost(updates, remainders, padding_mask):
    """Per-example ponder cost: mean of `updates + remainders` over real tokens.

    The ponder cost of Graves' Adaptive Computation Time, as the authors of
    ALBERT-ACT add it to their losses (before the weight tau).

    Args:
        updates: float `[batch, seq]` (or `[batch, choices, seq]`), the
            backbone's `updates`.
        remainders: float, the backbone's `remainders`, of the same shape.
        padding_mask: int or bool, of the same shape, 1 on real tokens.

    Returns:
        A float32 `[batch]` tensor: the mean over all real tokens of each
        example (0 for an example without real tokens).
    """
    real = tf.cast(padding_mask, tf.float32)
    total = _sum_per_example(
        (tf.cast(updates, tf.float32) + tf.cast(remainders, tf.float32)) * real
    )
    return total / tf.maximum(_sum_per_example(real), 1.0)


def _sum_per_example(values):
    """Sums over every axis but the first."""
    return tf.reduce_sum(values, axis=tf.range(1, tf.rank(values)))


@keras.saving.register_keras_serializable(package="keras_act")
class PonderCost(keras.layers.Layer):
    """Adds the ACT ponder cost to a model's loss and tracks the mean depth.

    A pass-through layer for the fine-tuning tasks: it returns `inputs`
    unchanged, adds `ponder_weight * mean(ponder_cost)` over the batch to the
    model's losses (`add_loss`, so `fit()` and `evaluate()` include it, as
    the authors fine-tune with ACT on), and updates the `mean_updates` metric:
    the mean number of block applications per real token.

    Args:
        ponder_weight: float >= 0, the weight tau of the ponder cost.
            Defaults to `1e-3`.
        **kwargs: arguments of `keras.layers.Layer` (e.g. `name`).

    Call arguments:
        inputs: any tensor, returned as is (put the layer on the path to the
            model's output so that it runs).
        updates: float `[batch, seq]` (or `[batch, choices, seq]`), the
            backbone's `updates`.
        remainders: float, the backbone's `remainders`, of the same shape.
        padding_mask: of the same shape, 1 on real tokens.

    Returns:
        `inputs`.

    Example:

    ```python
    outputs = backbone(inputs)
    pooled = keras_act.layers.PonderCost(1e-3)(
        outputs["pooled_output"], outputs["updates"], outputs["remainders"],
        inputs["padding_mask"],
    )
    ```
    """

    def __init__(self, ponder_weight=1e-3, **kwargs):
        super().__init__(**kwargs)
        check_non_negative_float("ponder_weight", ponder_weight)
        self.ponder_weight = float(ponder_weight)
        self.mean_updates = keras.metrics.Mean(name="mean_updates")
        self.built = True

    def call(self, inputs, updates, remainders, padding_mask):
        cost = ponder_cost(updates, remainders, padding_mask)
        if self.ponder_weight:
            self.add_loss(self.ponder_weight * tf.reduce_mean(cost))
        real = tf.cast(padding_mask, tf.float32)
        tokens = _sum_per_example(real)
        per_example = _sum_per_example(tf.cast(updates, tf.float32) * real)
        # Weighted by the token counts: the mean over all real tokens seen.
        self.mean_updates.update_state(per_example / tf.maximum(tokens, 1.0), sample_weight=tokens)
        return inputs

    def compute_output_shape(
        self, inputs_shape, updates_shape, remainders_shape, padding_mask_shape
    ):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update({"ponder_weight": self.ponder_weight})
        return config
