"""`AlbertActTokenClassifier`: ALBERT-ACT with a per-token classification head."""

import keras
import tensorflow as tf

from keras_act.layers.albert_act import albert_act_kernel_initializer
from keras_act.models.albert_act_task import AlbertActTask, default_optimizer
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
        dropout: float, dropout before the dense layer. Defaults to `0.1`.
        ponder_weight: float, the weight tau of the ponder cost. Defaults to
            the backbone's `ponder_weight`.
        **kwargs: arguments of `keras_hub.models.Task` (`name`, `compile`).

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

    def __init__(
        self, backbone, num_classes, preprocessor=None, dropout=0.1, ponder_weight=None, **kwargs
    ):
        self._check_backbone(backbone, preprocessor)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f"`num_classes` must be a positive int. Received: num_classes={num_classes!r}"
            )

        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="output_dropout"
        )
        self.output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=albert_act_kernel_initializer(),
            dtype=backbone.dtype_policy,
            name="logits",
        )

        # === Functional Model ===
        inputs = backbone.input
        outputs = backbone(inputs)
        sequence = self._ponder(
            outputs["sequence_output"], outputs, inputs["padding_mask"], ponder_weight
        )
        logits = self.output_dense(self.output_dropout(sequence))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self._build_depth_model(inputs, logits)

        # === Config ===
        self.num_classes = num_classes
        self.dropout = dropout

    def compile(self, optimizer="auto", loss="auto", *, weighted_metrics="auto", **kwargs):
        """Compiles with fine-tuning defaults.

        Args:
            optimizer: `"auto"` (AdamW, learning rate 2e-5, weight decay 0.01
                except on layer norms and biases, global clipnorm 1) or an
                optimizer.
            loss: `"auto"` (sparse categorical cross-entropy from logits,
                ignoring label -100, averaged over the labelled tokens) or a
                loss. The ponder cost is added in any case.
            weighted_metrics: `"auto"` (sparse categorical accuracy, weighted
                by the preprocessor's sample weights so that unlabelled
                tokens do not count) or a list.
            **kwargs: other arguments of `keras.Model.compile`.
        """
        if optimizer == "auto":
            optimizer = default_optimizer()
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(
                from_logits=True,
                ignore_class=IGNORE_LABEL,
                reduction="mean_with_sample_weight",
            )
        if weighted_metrics == "auto":
            weighted_metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        super().compile(optimizer=optimizer, loss=loss, weighted_metrics=weighted_metrics, **kwargs)

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
        config.update(
            {
                "num_classes": self.num_classes,
                "dropout": self.dropout,
                "ponder_weight": self.ponder_weight,
            }
        )
        return config
