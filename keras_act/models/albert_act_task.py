"""`AlbertActTask`: what the ALBERT-ACT fine-tuning tasks have in common."""

import warnings

import keras
import tensorflow as tf
from keras_hub.models import Task

from keras_act.layers.initializers import albert_act_kernel_initializer
from keras_act.layers.input_checks import LosslessInputCast
from keras_act.layers.ponder import PonderCost, ponder_cost
from keras_act.models.albert_act_backbone import AlbertActBackbone

# Variables without weight decay, as in BERT and ALBERT: layer norms, biases.
NO_WEIGHT_DECAY = ("gamma", "beta", "bias")


def default_optimizer(learning_rate=2e-5):
    """AdamW as ALBERT fine-tunes: weight decay 0.01 (not on layer norms
    and biases), epsilon 1e-6, gradients clipped to a global norm of 1."""
    optimizer = keras.optimizers.AdamW(
        learning_rate=learning_rate, weight_decay=0.01, epsilon=1e-6, global_clipnorm=1.0
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY))
    return optimizer


class AlbertActTask(LosslessInputCast, Task):
    """Base class of the ALBERT-ACT fine-tuning tasks.

    A keras-hub `Task` whose Functional graph runs an `AlbertActBackbone`,
    the `PonderCost` layer, dropout and the task's head. The constructor,
    the `compile()` defaults and the config are shared; a task defines only
    its head and its loss and metrics:

    - `make_head_layers(backbone)`: creates the head's layers (attributes).
    - `head(features, inputs)`: the head, from the backbone's
      `head_input` output (after the ponder cost and the dropout) and the
      symbolic inputs dict, to the task's output.
    - `default_loss()`, `default_metrics()` (or `default_weighted_metrics()`)
      and `per_example_loss()`: what `compile()` and
      `finetuning_losses()` use.
    - `get_config()`: only the task's own keys on top of the base's.

    The `PonderCost` layer adds the ACT ponder cost
    `ponder_weight * mean(updates + remainders)` (over real tokens) to the
    loss of `fit()` and `evaluate()` and reports the `mean_updates` metric
    (layers per real token): the paper fine-tunes with ACT on.

    Every task also has a `depth_model`, a Functional view of the same
    layers returning a dict of the task's output (`"logits"`) and the
    backbone's per-token `updates` and `remainders`, and
    `finetuning_losses()`, per-example loss terms for custom training loops
    (`training.trainer.DistributedTrainer`).

    Args:
        backbone: an `keras_act.AlbertActBackbone`.
        preprocessor: the task's preprocessor, or `None` to feed
            preprocessed inputs.
        dropout: float, dropout before the head. Defaults to `0.1`.
        ponder_weight: float, the weight tau of the ponder cost. Defaults to
            the backbone's `ponder_weight`.
        **kwargs: arguments of `keras_hub.models.Task` (`name`, `compile`).

    Example:

    >>> import numpy as np
    >>> import keras_act
    >>> backbone = keras_act.AlbertActBackbone(
    ...     vocabulary_size=50, max_layers=2, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, embedding_dim=4, max_sequence_length=8,
    ... )
    >>> classifier = keras_act.AlbertActTextClassifier(backbone, num_classes=3)
    >>> features = {
    ...     "token_ids": np.array([[2, 7, 3, 0]]),
    ...     "segment_ids": np.zeros((1, 4), "int32"),
    ...     "padding_mask": np.array([[1, 1, 1, 0]]),
    ... }
    >>> sorted(classifier.depth_model(features))
    ['logits', 'remainders', 'updates']
    >>> classifier.get_config()["dropout"], classifier.ponder_weight
    (0.1, 0.001)
    """

    backbone_cls = AlbertActBackbone
    # The backbone output the head reads: "pooled_output" or "sequence_output".
    head_input = "pooled_output"

    def __init__(self, backbone, preprocessor=None, dropout=0.1, ponder_weight=None, **kwargs):
        self._check_backbone(backbone, preprocessor)

        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="output_dropout"
        )
        self.make_head_layers(backbone)

        # === Functional Model ===
        inputs, outputs, depth = self.backbone_graph()
        features = self._ponder(
            outputs[self.head_input], depth, inputs["padding_mask"], ponder_weight
        )
        logits = self.head(self.output_dropout(features), inputs)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self._build_depth_model(inputs, logits)

        # === Config ===
        self.dropout = dropout

    def make_head_layers(self, backbone):
        """Creates the head's layers, as attributes of the task."""
        raise NotImplementedError

    def head(self, features, inputs):
        """The task's output from `features` (`[batch, ..., hidden]`, the
        backbone's `head_input` after dropout) and the symbolic `inputs`."""
        raise NotImplementedError

    def backbone_graph(self):
        """Symbolic inputs, backbone outputs and per-token depth tensors.

        Returns:
            `(inputs, outputs, depth)`: the task's input dict, the backbone's
            output dict, and a dict of `updates` and `remainders` shaped as
            `inputs["padding_mask"]`.
        """
        inputs = self.backbone.input
        outputs = self.backbone(inputs)
        return inputs, outputs, outputs


    def _check_backbone(self, backbone, preprocessor=None):
        if not isinstance(backbone, AlbertActBackbone):
            raise ValueError(
                f"{type(self).__name__} needs an `AlbertActBackbone`. Received: "
                f"backbone={backbone!r} of type {type(backbone).__name__}."
            )
        if preprocessor is not None:
            self._fit_preprocessor(backbone, preprocessor)

    def _fit_preprocessor(self, backbone, preprocessor):
        """Shortens a preprocessor's sequences to what the backbone can take.

        A preprocessor made with the default `sequence_length` (e.g. by
        `from_preset`) may pack longer sequences than the backbone's
        position table; it is cut to `max_sequence_length`, with a warning.
        """
        length = getattr(preprocessor, "sequence_length", None)
        if length is None or length <= backbone.max_sequence_length:
            return
        warnings.warn(
            f"The preprocessor's sequence_length={length} exceeds the backbone's "
            f"max_sequence_length={backbone.max_sequence_length}; using "
            f"{backbone.max_sequence_length}.",
            stacklevel=3,
        )
        preprocessor.sequence_length = backbone.max_sequence_length
        packer = getattr(preprocessor, "packer", None)
        if packer is not None:
            packer.sequence_length = backbone.max_sequence_length

    def _ponder(self, x, backbone_outputs, padding_mask, ponder_weight):
        """Passes `x` through the `PonderCost` layer; returns `x`.

        `ponder_weight=None` takes the backbone's `ponder_weight`.
        """
        if ponder_weight is None:
            ponder_weight = self.backbone.ponder_weight
        self.ponder_cost = PonderCost(
            ponder_weight=ponder_weight,
            dtype=self.backbone.dtype_policy,
            name="ponder_cost",
        )
        self._backbone_outputs = backbone_outputs
        return self.ponder_cost(
            x, backbone_outputs["updates"], backbone_outputs["remainders"], padding_mask
        )

    def _build_depth_model(self, inputs, outputs):
        # Not tracked: the view shares every layer and weight with the task.
        depth_model = keras.Model(
            inputs,
            {
                "logits": outputs,
                "updates": self._backbone_outputs["updates"],
                "remainders": self._backbone_outputs["remainders"],
            },
            name=f"{self.name}_depth",
        )
        object.__setattr__(self, "_depth_model", depth_model)
        object.__setattr__(self, "_backbone_outputs", None)

    def __setattr__(self, name, value):
        if name == "_backbone_outputs":
            # Symbolic tensors, kept only while the graph is built.
            return object.__setattr__(self, name, value)
        return super().__setattr__(name, value)

    @property
    def ponder_weight(self):
        """The weight tau of the ponder cost in the loss."""
        return self.ponder_cost.ponder_weight

    @property
    def depth_model(self):
        """A Functional view of the task that also returns the depth.

        It shares all layers and weights with the task and maps the same
        inputs to a dict of `logits` (the task's output), `updates` and
        `remainders` (float32 `[batch, seq]`, 0 on padding).
        """
        return self._depth_model

    def compile(
        self, optimizer="auto", loss="auto", *, metrics="auto", weighted_metrics="auto", **kwargs
    ):
        """Compiles with fine-tuning defaults.

        Args:
            optimizer: `"auto"` (AdamW, learning rate 2e-5, weight decay 0.01
                except on layer norms and biases, global clipnorm 1) or an
                optimizer.
            loss: `"auto"` (the task's `default_loss()`) or a loss. The
                ponder cost is added to it in any case.
            metrics: `"auto"` (the task's `default_metrics()`) or a list.
            weighted_metrics: `"auto"` (the task's
                `default_weighted_metrics()`) or a list.
            **kwargs: other arguments of `keras.Model.compile`.
        """
        if optimizer == "auto":
            optimizer = default_optimizer()
        if loss == "auto":
            loss = self.default_loss()
        if metrics == "auto":
            metrics = self.default_metrics()
        if weighted_metrics == "auto":
            weighted_metrics = self.default_weighted_metrics()
        super().compile(
            optimizer=optimizer,
            loss=loss,
            metrics=metrics,
            weighted_metrics=weighted_metrics,
            **kwargs,
        )

    def default_loss(self):
        """The loss `compile()` uses by default."""
        raise NotImplementedError

    def default_metrics(self):
        """The metrics `compile()` uses by default (`None`: none)."""
        return None

    def default_weighted_metrics(self):
        """The weighted metrics `compile()` uses by default (`None`: none)."""
        return None

    def get_config(self):
        config = super().get_config()
        config.update({"dropout": self.dropout, "ponder_weight": self.ponder_weight})
        return config

    def per_example_loss(self, y, logits):
        """The task loss of each example, float32 `[batch]` (no ponder cost)."""
        raise NotImplementedError

    def finetuning_losses(self, features, targets, outputs):
        """Per-example loss terms for a custom training loop.

        The same objective as `fit()` with the default `compile()`: the task
        loss plus `ponder_weight * ponder_cost`.

        Args:
            features: the dict of model inputs (`padding_mask` is used).
            targets: the labels, as the preprocessor returns them.
            outputs: the `depth_model`'s outputs on `features`.

        Returns:
            A dict of float32 `[batch]` tensors: `loss` (the total),
            `task_loss`, `ponder_cost` (before the weight tau),
            `updates_sum` and `tokens` (updates summed over an example's real
            tokens, and their number), plus what `per_example_statistics`
            adds (e.g. `correct`).
        """
        task_loss = self.per_example_loss(targets, outputs["logits"])
        cost = ponder_cost(outputs["updates"], outputs["remainders"], features["padding_mask"])
        real = tf.cast(features["padding_mask"], tf.float32)
        per_example = lambda t: tf.reduce_sum(t, axis=tf.range(1, tf.rank(t)))  # noqa: E731
        terms = {
            "loss": task_loss + self.ponder_weight * cost,
            "task_loss": task_loss,
            "ponder_cost": cost,
            "updates_sum": per_example(tf.cast(outputs["updates"], tf.float32) * real),
            "tokens": per_example(real),
        }
        terms.update(self.per_example_statistics(targets, outputs["logits"]))
        return terms

    def per_example_statistics(self, y, logits):
        """Extra float32 `[batch]` statistics of `finetuning_losses`."""
        return {}

    def compile_from_config(self, config):
        # Keras skips this for models with a custom `compile()`: restore the
        # compile arguments of a saved task (and build its optimizer, so its
        # saved state loads).
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built and getattr(self, "optimizer", None) is not None:
            self.optimizer.build(self.trainable_variables)


def head_dense(units, backbone, name, activation=None):
    """A dense output layer of a head, initialized and typed as ALBERT's.

    Args:
        units: int, the output size.
        backbone: the `AlbertActBackbone` (its dtype policy is used).
        name: str, the layer's name.
        activation: optional activation. Defaults to `None` (logits).

    Returns:
        A `keras.layers.Dense`.

    Example:

    >>> import keras_act
    >>> backbone = keras_act.AlbertActBackbone(
    ...     vocabulary_size=50, max_layers=2, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, embedding_dim=4, max_sequence_length=8,
    ... )
    >>> head_dense(2, backbone, name="logits").units
    2
    """
    return keras.layers.Dense(
        units,
        kernel_initializer=albert_act_kernel_initializer(),
        activation=activation,
        dtype=backbone.dtype_policy,
        name=name,
    )


def _float_logits(logits):
    return tf.cast(logits, tf.float32)


def sparse_cross_entropy(y, logits):
    """Per-example sparse softmax cross-entropy from logits, float32."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        tf.cast(tf.reshape(y, tf.shape(logits)[:-1]), tf.int32), _float_logits(logits)
    )


def argmax_correct(y, logits):
    """1.0 where the argmax of `logits` equals the label `y`, float32 `[batch]`."""
    labels = tf.cast(tf.reshape(y, tf.shape(logits)[:-1]), tf.int32)
    return tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels), tf.float32)
