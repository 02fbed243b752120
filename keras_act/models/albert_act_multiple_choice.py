"""`AlbertActMultipleChoice`: ALBERT-ACT scoring each choice of a question."""

import keras
import tensorflow as tf

from keras_act.layers.albert_act import albert_act_kernel_initializer
from keras_act.models.albert_act_multiple_choice_preprocessor import (
    AlbertActMultipleChoicePreprocessor,
)
from keras_act.models.albert_act_task import (
    AlbertActTask,
    argmax_correct,
    default_optimizer,
    sparse_cross_entropy,
)


@keras.saving.register_keras_serializable(package="keras_act")
class FlattenChoices(keras.layers.Layer):
    """`[batch, choices, ...]` to `[batch * choices, ...]`."""

    def call(self, inputs):
        shape = tf.shape(inputs)
        return tf.reshape(inputs, tf.concat([[-1], shape[2:]], axis=0))

    def compute_output_shape(self, input_shape):
        batch, choices = input_shape[0], input_shape[1]
        flat = None if batch is None or choices is None else batch * choices
        return (flat,) + tuple(input_shape[2:])


@keras.saving.register_keras_serializable(package="keras_act")
class UnflattenChoices(keras.layers.Layer):
    """`[batch * choices, ...]` back to the `[batch, choices, ...]` of `like`."""

    def call(self, inputs, like):
        shape = tf.shape(inputs)
        return tf.reshape(inputs, tf.concat([tf.shape(like)[:2], shape[1:]], axis=0))

    def compute_output_shape(self, inputs_shape, like_shape):
        return tuple(like_shape[:2]) + tuple(inputs_shape[1:])

    def compute_output_spec(self, inputs, like):
        return keras.KerasTensor(
            self.compute_output_shape(inputs.shape, like.shape), dtype=inputs.dtype
        )


@keras.saving.register_keras_serializable(package="keras_act")
class AlbertActMultipleChoice(AlbertActTask):
    """ALBERT-ACT for multiple choice (SWAG, RACE, COPA, ARC, ...).

    Each `(prompt, choice)` pair `[batch, num_choices, seq]` runs through the
    backbone as one sequence; dropout and a one-unit dense layer on its
    `pooled_output` score it, giving logits `[batch, num_choices]` (a
    softmax over choices, as BERT's SWAG head). The number of choices may
    differ from batch to batch. The loss is the cross-entropy of the right
    choice plus the ACT ponder cost `ponder_weight * mean(updates +
    remainders)` over the real tokens of all choices; `fit()` reports the
    accuracy and `mean_updates`.

    Reference: Simoulin & Crabbé (2021), "How Many Layers and Why? An
    Analysis of the Model Depth in Transformers".

    Args:
        backbone: an `keras_act.AlbertActBackbone`.
        preprocessor: an `AlbertActMultipleChoicePreprocessor`, or `None`.
        dropout: float, dropout before the dense layer. Defaults to `0.1`.
        ponder_weight: float, the weight tau of the ponder cost. Defaults to
            the backbone's `ponder_weight`.
        **kwargs: arguments of `keras_hub.models.Task` (`name`, `compile`).

    Returns:
        Called on the features dict (`[batch, num_choices, seq]` each):
        logits `[batch, num_choices]`.

    Example:

    ```python
    chooser = keras_act.AlbertActMultipleChoice(
        backbone,
        preprocessor=keras_act.AlbertActMultipleChoicePreprocessor(tokenizer, 64),
    )
    chooser.fit(
        x=(["The glass fell off the table."], [["It broke.", "It sang."]]),
        y=[0],
        batch_size=1,
    )
    ```
    """

    preprocessor_cls = AlbertActMultipleChoicePreprocessor

    def __init__(self, backbone, preprocessor=None, dropout=0.1, ponder_weight=None, **kwargs):
        self._check_backbone(backbone, preprocessor)

        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.flatten_choices = FlattenChoices(dtype=backbone.dtype_policy, name="flatten_choices")
        self.unflatten_choices = UnflattenChoices(
            dtype=backbone.dtype_policy, name="unflatten_choices"
        )
        self.unflatten_depth = UnflattenChoices(dtype="float32", name="unflatten_depth")
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="output_dropout"
        )
        self.output_dense = keras.layers.Dense(
            1,
            kernel_initializer=albert_act_kernel_initializer(),
            dtype=backbone.dtype_policy,
            name="choice_score",
        )

        # === Functional Model ===
        inputs = {
            name: keras.Input(shape=(None, None), dtype="int32", name=name)
            for name in ("token_ids", "segment_ids", "padding_mask")
        }
        outputs = backbone({name: self.flatten_choices(value) for name, value in inputs.items()})
        depth = {
            name: self.unflatten_depth(outputs[name], inputs["padding_mask"])
            for name in ("updates", "remainders")
        }
        pooled = self._ponder(
            outputs["pooled_output"], depth, inputs["padding_mask"], ponder_weight
        )
        scores = self.output_dense(self.output_dropout(pooled))  # [batch * choices, 1]
        logits = self.unflatten_choices(scores, inputs["padding_mask"])[:, :, 0]
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self._build_depth_model(inputs, logits)

        # === Config ===
        self.dropout = dropout

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """Compiles with fine-tuning defaults.

        Args:
            optimizer: `"auto"` (AdamW, learning rate 2e-5, weight decay 0.01
                except on layer norms and biases, global clipnorm 1) or an
                optimizer.
            loss: `"auto"` (sparse categorical cross-entropy over the choices,
                from logits) or a loss; the ponder cost is added in any case.
            metrics: `"auto"` (sparse categorical accuracy) or a list.
            **kwargs: other arguments of `keras.Model.compile`.
        """
        if optimizer == "auto":
            optimizer = default_optimizer()
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def per_example_loss(self, y, logits):
        return sparse_cross_entropy(y, logits)

    def per_example_statistics(self, y, logits):
        return {"correct": argmax_correct(y, logits)}

    def get_config(self):
        config = super().get_config()
        config.update({"dropout": self.dropout, "ponder_weight": self.ponder_weight})
        return config
