"""`AlbertActTextRegressor`: ALBERT-ACT with a sequence regression head."""

import keras
import tensorflow as tf

from keras_act.models.albert_act_task import AlbertActTask, head_dense
from keras_act.models.albert_act_text_classifier_preprocessor import (
    AlbertActTextClassifierPreprocessor,
)


@keras.saving.register_keras_serializable(package="keras_act")
class StreamingPearsonCorrelation(keras.metrics.Metric):
    """Pearson correlation of all predictions and targets seen so far.

    Unlike `keras.metrics.PearsonCorrelation` (a mean of per-batch values),
    it accumulates the sums of `x`, `y`, `x^2`, `y^2` and `xy` over the
    epoch, so its result is the correlation of the whole evaluation set.

    Args:
        name: str. Defaults to `"pearson"`.
        dtype: the dtype of the sums. Defaults to `"float32"`.
    """

    def __init__(self, name="pearson", dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self._sums = [
            self.add_variable(shape=(), initializer="zeros", name=key, aggregation="sum")
            for key in ("n", "x", "y", "xx", "yy", "xy")
        ]

    def update_state(self, y_true, y_pred, sample_weight=None):
        x = keras.ops.reshape(keras.ops.cast(y_pred, self.dtype), (-1,))
        y = keras.ops.reshape(keras.ops.cast(y_true, self.dtype), (-1,))
        w = (
            keras.ops.ones_like(x)
            if sample_weight is None
            else keras.ops.reshape(keras.ops.cast(sample_weight, self.dtype), (-1,))
        )
        values = (w, w * x, w * y, w * x * x, w * y * y, w * x * y)
        for variable, value in zip(self._sums, values, strict=True):
            variable.assign_add(keras.ops.sum(value))

    def result(self):
        n, x, y, xx, yy, xy = self._sums
        n = keras.ops.maximum(n, 1.0)
        covariance = xy / n - (x / n) * (y / n)
        variance_x = keras.ops.maximum(xx / n - (x / n) ** 2, 0.0)
        variance_y = keras.ops.maximum(yy / n - (y / n) ** 2, 0.0)
        return keras.ops.divide_no_nan(covariance, keras.ops.sqrt(variance_x * variance_y))

    def reset_state(self):
        for variable in self._sums:
            variable.assign(0.0)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="keras_act")
class AlbertActTextRegressor(AlbertActTask):
    """ALBERT-ACT for sequence regression (GLUE's STS-B similarity scores).

    Dropout and a one-unit dense layer on the backbone's `pooled_output`
    give a score `[batch, 1]`. The loss is the mean squared error plus the
    ACT ponder cost `ponder_weight * mean(updates + remainders)` over real
    tokens; `fit()` reports the Pearson correlation and `mean_updates`.

    Reference: Simoulin & Crabbé (2021), "How Many Layers and Why? An
    Analysis of the Model Depth in Transformers".

    Args:
        backbone: an `keras_act.AlbertActBackbone`.
        preprocessor: an `AlbertActTextClassifierPreprocessor`, or `None`.
        dropout, ponder_weight, **kwargs: as in `AlbertActTask` (dropout
            before the head, the weight tau of the ponder cost, arguments of
            `keras_hub.models.Task`).

    Returns:
        Called on the features dict: float scores `[batch, 1]`.

    Example:

    ```python
    regressor = keras_act.AlbertActTextRegressor(
        backbone,
        preprocessor=keras_act.AlbertActTextClassifierPreprocessor(tokenizer, 128),
    )
    regressor.fit(x=(["A man plays."], ["Someone plays."]), y=[4.2], batch_size=1)
    ```
    """

    preprocessor_cls = AlbertActTextClassifierPreprocessor

    def make_head_layers(self, backbone):
        self.output_dense = head_dense(1, backbone, name="score")

    def head(self, features, inputs):
        return self.output_dense(features)

    def default_loss(self):
        """Mean squared error."""
        return keras.losses.MeanSquaredError()

    def default_metrics(self):
        """`StreamingPearsonCorrelation`."""
        return [StreamingPearsonCorrelation(name="pearson")]

    def per_example_loss(self, y, logits):
        scores = tf.cast(tf.reshape(logits, [-1]), tf.float32)
        return tf.math.squared_difference(scores, tf.cast(tf.reshape(y, [-1]), tf.float32))
