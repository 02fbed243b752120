"""`AlbertActTokenClassifier`: ALBERT-ACT with a per-token classification head."""

import keras
import tensorflow as tf

from keras_act.checks import check_positive_int
from keras_act.models.albert_act_task import AlbertActTask, head_dense
from keras_act.models.albert_act_token_classifier_preprocessor import (
    IGNORE_LABEL,
    AlbertActTokenClassifierPreprocessor,
)


@keras.saving.register_keras_serializable(package="keras_act")
class AlbertActTokenClassifier(AlbertActTask):
    """ALBERT-ACT for token classification (named entities, part of speech).

    Dropout and a dense layer on the backbone's `sequence_output` give
    logits `[batch, seq, num_classes]` for every token. Labels are
    `[batch, seq]` integers with `-100` on tokens without a label (the
    `AlbertActTokenClassifierPreprocessor` labels the first piece of each
    word and weights the others 0). The loss is the cross-entropy over
    labelled tokens plus the ACT ponder cost `ponder_weight * mean(updates +
    remainders)` over real tokens; `fit()` reports the token accuracy and
    `mean_updates`.

    Reference: Simoulin & Crabbé (2021), "How Many Layers and Why? An
    Analysis of the Model Depth in Transformers".

    Args:
        backbone: an `keras_act.AlbertActBackbone`.
        num_classes: int, the number of token classes.
        preprocessor: an `AlbertActTokenClassifierPreprocessor`, or `None`.
        dropout, ponder_weight, **kwargs: as in `AlbertActTask` (dropout
            before the head, the weight tau of the ponder cost, arguments of
            `keras_hub.models.Task`).

    Returns:
        Called on the features dict: logits `[batch, seq, num_classes]`.

    Example:

    ```python
    tagger = keras_act.AlbertActTokenClassifier(
        backbone,
        num_classes=9,
        preprocessor=keras_act.AlbertActTokenClassifierPreprocessor(tokenizer, 128),
    )
    tagger.fit(x=[["John", "lives", "in", "Reykjavik"]], y=[[1, 0, 0, 5]], batch_size=1)
    ```
    """

    preprocessor_cls = AlbertActTokenClassifierPreprocessor

    head_input = "sequence_output"

    def __init__(
        self, backbone, num_classes, preprocessor=None, dropout=0.1, ponder_weight=None, **kwargs
    ):
        self.num_classes = check_positive_int("num_classes", num_classes)
        super().__init__(backbone, preprocessor, dropout, ponder_weight, **kwargs)

    def make_head_layers(self, backbone):
        self.output_dense = head_dense(self.num_classes, backbone, name="logits")

    def head(self, features, inputs):
        return self.output_dense(features)

    def default_loss(self):
        """Sparse categorical cross-entropy from logits, ignoring label -100,
        averaged over the labelled tokens."""
        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=True,
            ignore_class=IGNORE_LABEL,
            reduction="mean_with_sample_weight",
        )

    def default_weighted_metrics(self):
        """Sparse categorical accuracy, weighted by the preprocessor's sample
        weights so that unlabelled tokens do not count."""
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def per_example_loss(self, y, logits):
        labels = tf.cast(y, tf.int32)
        labelled = tf.not_equal(labels, IGNORE_LABEL)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
            tf.where(labelled, labels, 0), tf.cast(logits, tf.float32)
        )
        weights = tf.cast(labelled, tf.float32)
        return tf.reduce_sum(losses * weights, axis=-1) / tf.maximum(
            tf.reduce_sum(weights, axis=-1), 1.0
        )

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes})
        return config
