"""`AlbertActMultipleChoice`: ALBERT-ACT scoring each choice of a question."""

import keras
import tensorflow as tf

from keras_act.models.albert_act_multiple_choice_preprocessor import (
    AlbertActMultipleChoicePreprocessor,
)
from keras_act.models.albert_act_task import (
    AlbertActTask,
    argmax_correct,
    head_dense,
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
        dropout, ponder_weight, **kwargs: as in `AlbertActTask` (dropout
            before the head, the weight tau of the ponder cost, arguments of
            `keras_hub.models.Task`).

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

    def make_head_layers(self, backbone):
        self.flatten_choices = FlattenChoices(dtype=backbone.dtype_policy, name="flatten_choices")
        self.unflatten_choices = UnflattenChoices(
            dtype=backbone.dtype_policy, name="unflatten_choices"
        )
        self.unflatten_depth = UnflattenChoices(dtype="float32", name="unflatten_depth")
        self.output_dense = head_dense(1, backbone, name="choice_score")

    def backbone_graph(self):
        # Each (prompt, choice) pair runs through the backbone as one sequence.
        inputs = {
            name: keras.Input(shape=(None, None), dtype="int32", name=name)
            for name in ("token_ids", "segment_ids", "padding_mask")
        }
        outputs = self.backbone(
            {name: self.flatten_choices(value) for name, value in inputs.items()}
        )
        depth = {
            name: self.unflatten_depth(outputs[name], inputs["padding_mask"])
            for name in ("updates", "remainders")
        }
        return inputs, outputs, depth

    def head(self, features, inputs):
        scores = self.output_dense(features)  # [batch * choices, 1]
        return self.unflatten_choices(scores, inputs["padding_mask"])[:, :, 0]

    def default_loss(self):
        """Sparse categorical cross-entropy over the choices, from logits."""
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def default_metrics(self):
        """Sparse categorical accuracy."""
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def per_example_loss(self, y, logits):
        return sparse_cross_entropy(y, logits)

    def per_example_statistics(self, y, logits):
        return {"correct": argmax_correct(y, logits)}
