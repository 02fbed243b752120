"""`AlbertActQuestionAnswerer`: ALBERT-ACT for extractive question answering."""

import keras
import tensorflow as tf

from keras_act.layers.initializers import albert_act_kernel_initializer
from keras_act.models.albert_act_question_answerer_preprocessor import (
    AlbertActQuestionAnswererPreprocessor,
)
from keras_act.models.albert_act_task import AlbertActTask

# Added to the span logits of padding: no span starts or ends there.
_PADDING_LOGIT = -1e4


def _span_labels(y_true):
    labels = tf.cast(tf.reshape(y_true, [-1, 2]), tf.int32)
    return labels[:, 0], labels[:, 1]


@keras.saving.register_keras_serializable(package="keras_act")
def span_cross_entropy(y_true, y_pred):
    """Mean of the start and end cross-entropies of each example.

    Args:
        y_true: int `[batch, 2]`, the `(start, end)` token positions.
        y_pred: `[batch, seq, 2]`, start and end logits.

    Returns:
        float32 `[batch]`.
    """
    start, end = _span_labels(y_true)
    logits = tf.cast(y_pred, tf.float32)
    start_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(start, logits[:, :, 0])
    end_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(end, logits[:, :, 1])
    return (start_loss + end_loss) / 2.0


@keras.saving.register_keras_serializable(package="keras_act")
def span_exact_match(y_true, y_pred):
    """1.0 where both the argmax start and end are the labelled ones."""
    start, end = _span_labels(y_true)
    predicted = tf.argmax(y_pred, axis=1, output_type=tf.int32)  # [batch, 2]
    return tf.cast(
        tf.logical_and(tf.equal(predicted[:, 0], start), tf.equal(predicted[:, 1], end)),
        tf.float32,
    )


@keras.saving.register_keras_serializable(package="keras_act")
class SpanCrossEntropy(keras.losses.Loss):
    """Cross-entropy of the start and end positions of an answer span.

    `y_true` is int `[batch, 2]` (start, end); `y_pred` the span logits
    `[batch, seq, 2]` of `AlbertActQuestionAnswerer`. Each example's loss is
    the mean of its start and end cross-entropies (BERT's SQuAD loss).

    Args:
        name: str. Defaults to `"span_cross_entropy"`.
        reduction: as `keras.losses.Loss`.
        dtype: as `keras.losses.Loss`.
    """

    def __init__(self, name="span_cross_entropy", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return span_cross_entropy(y_true, y_pred)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


@keras.saving.register_keras_serializable(package="keras_act")
class SpanLogits(keras.layers.Layer):
    """Start and end logits per token, with padding pushed to -1e4.

    Call arguments: `sequence` `[batch, seq, hidden]` and `padding_mask`
    `[batch, seq]`. Returns float32 `[batch, seq, 2]`.

    Args:
        kernel_initializer: initializer of the dense layer.
        **kwargs: arguments of `keras.layers.Layer`.
    """

    def __init__(self, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.dense = keras.layers.Dense(
            2,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="span_dense",
        )

    def build(self, sequence_shape, padding_mask_shape=None):
        self.dense.build(sequence_shape)
        self.built = True

    def call(self, sequence, padding_mask):
        logits = tf.cast(self.dense(sequence), tf.float32)
        real = tf.cast(padding_mask, tf.bool)[:, :, tf.newaxis]
        return tf.where(real, logits, _PADDING_LOGIT)

    def compute_output_shape(self, sequence_shape, padding_mask_shape=None):
        return tuple(sequence_shape[:-1]) + (2,)

    def compute_output_spec(self, sequence, padding_mask):
        return keras.KerasTensor(self.compute_output_shape(sequence.shape), dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update({"kernel_initializer": keras.initializers.serialize(self.kernel_initializer)})
        return config


@keras.saving.register_keras_serializable(package="keras_act")
class AlbertActQuestionAnswerer(AlbertActTask):
    """ALBERT-ACT for extractive question answering (SQuAD).

    Dropout and a two-unit dense layer on the backbone's `sequence_output`
    give, for every token, the logit of the answer starting and of it ending
    there: float32 `[batch, seq, 2]` (padding at -1e4). Labels are int
    `[batch, 2]` token positions `(start, end)`, as the
    `AlbertActQuestionAnswererPreprocessor` makes them from SQuAD's character
    offsets. The loss is the mean of the start and end cross-entropies plus
    the ACT ponder cost `ponder_weight * mean(updates + remainders)` over
    real tokens; `fit()` reports the span exact match and `mean_updates`.

    Reference: Simoulin & Crabbé (2021), "How Many Layers and Why? An
    Analysis of the Model Depth in Transformers".

    Args:
        backbone: an `keras_act.AlbertActBackbone`.
        preprocessor: an `AlbertActQuestionAnswererPreprocessor`, or `None`.
        dropout, ponder_weight, **kwargs: as in `AlbertActTask` (dropout
            before the head, the weight tau of the ponder cost, arguments of
            `keras_hub.models.Task`).

    Returns:
        Called on the features dict: span logits `[batch, seq, 2]`.

    Example:

    ```python
    preprocessor = keras_act.AlbertActQuestionAnswererPreprocessor(tokenizer, 384)
    answerer = keras_act.AlbertActQuestionAnswerer(backbone, preprocessor=preprocessor)
    answerer.fit(
        x=(questions, contexts),
        y={"answer_start": starts, "answer_text": texts},
        batch_size=16,
    )
    logits = answerer.predict((questions, contexts))
    preprocessor.decode_answers((questions, contexts), logits)
    ```
    """

    preprocessor_cls = AlbertActQuestionAnswererPreprocessor

    head_input = "sequence_output"

    def make_head_layers(self, backbone):
        self.span_logits = SpanLogits(
            kernel_initializer=albert_act_kernel_initializer(),
            dtype=backbone.dtype_policy,
            name="span_logits",
        )

    def head(self, features, inputs):
        return self.span_logits(features, inputs["padding_mask"])

    def default_loss(self):
        """`SpanCrossEntropy`."""
        return SpanCrossEntropy()

    def default_metrics(self):
        """Span exact match: start and end both right."""
        return [keras.metrics.MeanMetricWrapper(span_exact_match, name="exact_match")]

    def per_example_loss(self, y, logits):
        return span_cross_entropy(y, logits)

    def per_example_statistics(self, y, logits):
        return {"correct": span_exact_match(y, logits)}
