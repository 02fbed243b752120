"""`AlbertActTextClassifier`: ALBERT-ACT with a sequence classification head."""

import keras

from keras_act.layers.albert_act import albert_act_kernel_initializer
from keras_act.models.albert_act_task import (
    AlbertActTask,
    argmax_correct,
    default_optimizer,
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
        dropout: float, dropout before the dense layer (ALBERT's
            `classifier_dropout_prob`). Defaults to `0.1`.
        ponder_weight: float, the weight tau of the ponder cost. Defaults to
            the backbone's `ponder_weight`.
        **kwargs: arguments of `keras_hub.models.Task` (`name`, `compile`).

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
        self._check_backbone(backbone, preprocessor)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f"`num_classes` must be a positive int. Received: num_classes={num_classes!r}"
            )
        # Read by `compile()`, which `Task.__init__` calls.
        self.activation = keras.activations.get(activation)

        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="output_dropout"
        )
        self.output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=albert_act_kernel_initializer(),
            activation=activation,
            dtype=backbone.dtype_policy,
            name="logits",
        )

        # === Functional Model ===
        inputs = backbone.input
        outputs = backbone(inputs)
        pooled = self._ponder(
            outputs["pooled_output"], outputs, inputs["padding_mask"], ponder_weight
        )
        logits = self.output_dense(self.output_dropout(pooled))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self._build_depth_model(inputs, logits)

        # === Config ===
        self.num_classes = num_classes
        self.dropout = dropout

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """Compiles with fine-tuning defaults.

        Args:
            optimizer: `"auto"` (AdamW, learning rate 2e-5, weight decay 0.01
                except on layer norms and biases, global clipnorm 1) or an
                optimizer.
            loss: `"auto"` (sparse categorical cross-entropy, from logits
                unless `activation="softmax"`) or a loss. The ponder cost is
                added to it in any case.
            metrics: `"auto"` (sparse categorical accuracy) or a list.
            **kwargs: other arguments of `keras.Model.compile`.
        """
        if optimizer == "auto":
            optimizer = default_optimizer()
        if loss == "auto":
            from_logits = self.activation != keras.activations.softmax
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

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
                "dropout": self.dropout,
                "ponder_weight": self.ponder_weight,
            }
        )
        return config
