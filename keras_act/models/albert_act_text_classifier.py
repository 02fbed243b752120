"""`AlbertActTextClassifier`: ALBERT-ACT with a sequence classification head."""

import keras

from keras_act.checks import check_positive_int
from keras_act.models.albert_act_task import (
    AlbertActTask,
    argmax_correct,
    head_dense,
    sparse_cross_entropy,
)
from keras_act.models.albert_act_text_classifier_preprocessor import (
    AlbertActTextClassifierPreprocessor,
)


@keras.saving.register_keras_serializable(package="keras_act")
class AlbertActTextClassifier(AlbertActTask):
    """ALBERT-ACT for sequence classification (GLUE's SST-2, CoLA, MNLI, ...).

    Dropout and a dense layer on the backbone's `pooled_output` (the tanh
    pooler of `[CLS]`) give logits `[batch, num_classes]`, as ALBERT's
    classifier. The ACT ponder cost `ponder_weight * mean(updates +
    remainders)` over real tokens is added to the loss, as the paper
    fine-tunes with ACT on, and `fit()` reports `mean_updates`, the layers
    per real token.

    With a `preprocessor`, `fit()`, `evaluate()` and `predict()` take raw
    text (or tuples of texts for sentence pairs); without, the dict of
    `token_ids`, `segment_ids` and `padding_mask`.

    Reference: Simoulin & Crabbé (2021), "How Many Layers and Why? An
    Analysis of the Model Depth in Transformers"; Lan et al. (2020), ALBERT.

    Args:
        backbone: an `keras_act.AlbertActBackbone`.
        num_classes: int, the number of classes.
        preprocessor: an `AlbertActTextClassifierPreprocessor`, or `None`
            to feed preprocessed inputs.
        activation: optional activation of the output (`"softmax"` for
            probabilities). Defaults to `None` (logits).
        dropout, ponder_weight, **kwargs: as in `AlbertActTask` (dropout
            before the head, the weight tau of the ponder cost, arguments of
            `keras_hub.models.Task`).

    Returns:
        Called on the features dict: logits `[batch, num_classes]` (a layer
        named `"logits"`).

    Example:

    ```python
    tokenizer = keras_act.AlbertActTokenizer(proto="spiece.model")
    backbone = keras_act.AlbertActBackbone.from_preset("runs/pretrain/preset")
    classifier = keras_act.AlbertActTextClassifier(
        backbone,
        num_classes=2,
        preprocessor=keras_act.AlbertActTextClassifierPreprocessor(
            tokenizer, sequence_length=128
        ),
    )
    classifier.fit(x=["a charming movie", "a dull one"], y=[1, 0], batch_size=2)
    classifier.predict(["what a film"])  # logits [1, 2]
    # Sentence pairs: x=(premises, hypotheses).
    ```
    """

    preprocessor_cls = AlbertActTextClassifierPreprocessor

    def __init__(
        self,
        backbone,
        num_classes,
        preprocessor=None,
        activation=None,
        dropout=0.1,
        ponder_weight=None,
        **kwargs,
    ):
        self.num_classes = check_positive_int("num_classes", num_classes)
        # Read by `compile()`, which `Task.__init__` calls.
        self.activation = keras.activations.get(activation)
        super().__init__(backbone, preprocessor, dropout, ponder_weight, **kwargs)

    def make_head_layers(self, backbone):
        self.output_dense = head_dense(
            self.num_classes, backbone, name="logits", activation=self.activation
        )

    def head(self, features, inputs):
        return self.output_dense(features)

    def default_loss(self):
        """Sparse categorical cross-entropy, from logits unless
        `activation="softmax"`."""
        from_logits = self.activation != keras.activations.softmax
        return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)

    def default_metrics(self):
        """Sparse categorical accuracy."""
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def per_example_loss(self, y, logits):
        if self.activation == keras.activations.softmax:
            probabilities = keras.ops.clip(keras.ops.cast(logits, "float32"), 1e-7, 1.0)
            logits = keras.ops.log(probabilities)
        return sparse_cross_entropy(y, logits)

    def per_example_statistics(self, y, logits):
        return {"correct": argmax_correct(y, logits)}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "activation": keras.activations.serialize(self.activation),
            }
        )
        return config
