"""`AlbertActPretrainer`: the backbone with ALBERT's MLM and SOP heads."""

import keras
import tensorflow as tf
from keras_hub.layers import MaskedLMHead

from keras_act.depth_categories import depth_category_masks, depth_category_sums
from keras_act.layers.activations import get_activation
from keras_act.layers.initializers import albert_act_kernel_initializer
from keras_act.layers.input_checks import LosslessInputCast
from keras_act.layers.ponder import ponder_cost
from keras_act.models.albert_act_task import head_dense


@keras.saving.register_keras_serializable(package="keras_act")
class AlbertActPretrainer(LosslessInputCast, keras.Model):
    """ALBERT-ACT with its pre-training heads (masked LM and sentence order).

    The masked-LM head (dense to `embedding_dim`, activation, layer norm, then
    the transposed token embedding plus a bias: the decoder is tied to the
    input embeddings, as in ALBERT) reads the tokens at `mask_positions`; the
    sentence-order head is a dense layer on the pooled output. The per-token
    `updates` and `remainders` of the backbone are passed through, so the
    ponder cost can be added to the loss.

    The training loss of an example is the masked-LM cross-entropy (mean over
    its targets) plus the sentence-order cross-entropy plus
    `ponder_weight * mean(updates + remainders)` over its real tokens (the
    ponder cost of Graves' ACT). `pretraining_losses` computes the three
    terms; `compile()` + `fit()` use them directly, and the custom
    distributed loop of `training.pretrain` calls the same function.

    Args:
        backbone: a `keras_act.AlbertActBackbone`.
        sop_dropout: float, dropout before the sentence-order classifier.
            Defaults to the backbone's `dropout` (0 for ALBERT v2 and the
            presets, so that runs on one device and on several replicas
            draw no random numbers and compute the same updates).
        ponder_weight: float, the weight tau of the ponder cost. Defaults to
            the backbone's `ponder_weight`.
        **kwargs: other keyword arguments of `keras.Model`.

    Inputs: a dict of `token_ids`, `segment_ids`, `padding_mask`
    (`[batch, seq]`) and `mask_positions` (`[batch, num_predictions]`, int).

    Returns: a dict of `mlm_logits` `[batch, num_predictions, vocabulary]`,
    `sop_logits` `[batch, 2]`, `updates` and `remainders` `[batch, seq]`.

    Example:

    >>> import keras_act
    >>> import numpy as np
    >>> backbone = keras_act.AlbertActBackbone.from_preset("albert_act_tiny")
    >>> pretrainer = keras_act.AlbertActPretrainer(backbone)
    >>> outputs = pretrainer({
    ...     "token_ids": np.array([[2, 57, 4, 3]]),
    ...     "segment_ids": np.zeros((1, 4), "int32"),
    ...     "padding_mask": np.ones((1, 4), "int32"),
    ...     "mask_positions": np.array([[2]]),
    ... })
    >>> outputs["mlm_logits"].shape
    TensorShape([1, 1, 30000])
    """

    def __init__(self, backbone, sop_dropout=None, ponder_weight=None, **kwargs):
        if sop_dropout is None:
            sop_dropout = backbone.dropout
        # === Layers ===
        self.backbone = backbone
        self.mlm_head = MaskedLMHead(
            token_embedding=backbone.token_embedding,
            intermediate_activation=get_activation(backbone.activation),
            layer_norm_epsilon=backbone.layer_norm_epsilon,
            kernel_initializer=albert_act_kernel_initializer(),
            dtype=backbone.dtype_policy,
            name="mlm_head",
        )
        self.sop_dropout = keras.layers.Dropout(
            sop_dropout, dtype=backbone.dtype_policy, name="sop_dropout"
        )
        self.sop_head = head_dense(2, backbone, name="sop_head")

        # === Functional Model ===
        inputs = dict(backbone.input)
        inputs["mask_positions"] = keras.Input(
            shape=(None,), dtype="int32", name="mask_positions"
        )
        outputs = backbone(
            {k: inputs[k] for k in ("token_ids", "segment_ids", "padding_mask")}
        )
        mlm_logits = self.mlm_head(
            outputs["sequence_output"], mask_positions=inputs["mask_positions"]
        )
        sop_logits = self.sop_head(self.sop_dropout(outputs["pooled_output"]))
        super().__init__(
            inputs=inputs,
            outputs={
                "mlm_logits": mlm_logits,
                "sop_logits": sop_logits,
                "updates": outputs["updates"],
                "remainders": outputs["remainders"],
            },
            **kwargs,
        )

        # === Config ===
        self.sop_dropout_rate = sop_dropout
        self.ponder_weight = (
            backbone.ponder_weight if ponder_weight is None else float(ponder_weight)
        )
        self._trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("loss", "mlm_loss", "sop_loss", "ponder_cost", "mlm_accuracy", "sop_accuracy", "mean_updates")
        }

    def pretraining_losses(self, features, targets, outputs):
        """Per-example loss terms and statistics of a pre-training batch.

        Args:
            features: dict of the model's inputs.
            targets: dict of `mask_ids`, `mask_weights` (`[batch,
                predictions]`) and `sop_label` (`[batch]`).
            outputs: the model's outputs on `features`.

        Returns:
            A dict of float32 `[batch]` tensors: `loss` (the total),
            `mlm_loss`, `sop_loss`, `ponder_cost` (mean `updates +
            remainders` over real tokens, before the weight tau),
            `mlm_correct`, `mlm_count`, `sop_correct`.
        """
        mask_ids = tf.cast(targets["mask_ids"], tf.int32)
        weights = tf.cast(targets["mask_weights"], tf.float32)
        mlm_logits = tf.cast(outputs["mlm_logits"], tf.float32)
        mlm_losses = tf.nn.sparse_softmax_cross_entropy_with_logits(mask_ids, mlm_logits)
        mlm_count = tf.reduce_sum(weights, axis=1)
        mlm_loss = tf.reduce_sum(mlm_losses * weights, axis=1) / tf.maximum(mlm_count, 1.0)
        mlm_correct = tf.reduce_sum(
            tf.cast(tf.equal(tf.argmax(mlm_logits, -1, output_type=tf.int32), mask_ids), tf.float32)
            * weights,
            axis=1,
        )
        sop_label = tf.cast(targets["sop_label"], tf.int32)
        sop_logits = tf.cast(outputs["sop_logits"], tf.float32)
        sop_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(sop_label, sop_logits)
        sop_correct = tf.cast(
            tf.equal(tf.argmax(sop_logits, -1, output_type=tf.int32), sop_label), tf.float32
        )
        cost = ponder_cost(outputs["updates"], outputs["remainders"], features["padding_mask"])
        return {
            "loss": mlm_loss + sop_loss + self.ponder_weight * cost,
            "mlm_loss": mlm_loss,
            "sop_loss": sop_loss,
            "ponder_cost": cost,
            "mlm_correct": mlm_correct,
            "mlm_count": mlm_count,
            "sop_correct": sop_correct,
        }

    def depth_statistics(self, features, targets, outputs):
        """Sums of updates and token counts for the paper's categories.

        Returns:
            A dict `{category: (sum_of_updates, count)}`, see
            `keras_act.depth_categories`.
        """
        masks = depth_category_masks(
            features["token_ids"],
            features["padding_mask"],
            features["mask_positions"],
            targets["mask_ids"],
            targets["mask_weights"],
        )
        return depth_category_sums(outputs["updates"], masks)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        terms = self.pretraining_losses(x, y, y_pred)
        loss = tf.reduce_mean(terms["loss"])
        trackers = self._trackers
        trackers["loss"].update_state(loss)
        for name in ("mlm_loss", "sop_loss", "ponder_cost"):
            trackers[name].update_state(terms[name])
        trackers["mlm_accuracy"].update_state(
            tf.reduce_sum(terms["mlm_correct"]) / tf.maximum(tf.reduce_sum(terms["mlm_count"]), 1.0)
        )
        trackers["sop_accuracy"].update_state(terms["sop_correct"])
        real = tf.cast(x["padding_mask"], tf.float32)
        trackers["mean_updates"].update_state(
            tf.reduce_sum(y_pred["updates"]) / tf.maximum(tf.reduce_sum(real), 1.0)
        )
        return loss + tf.add_n(self.losses) if self.losses else loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return {name: tracker.result() for name, tracker in self._trackers.items()}

    @property
    def metrics(self):
        return list(self._trackers.values())

    def compile(self, optimizer="auto", **kwargs):
        """Compiles with ALBERT's optimizer, LAMB (learning rate 1e-3, global
        clip norm 1), unless one is given."""
        if optimizer == "auto":
            optimizer = keras.optimizers.Lamb(learning_rate=1e-3, global_clipnorm=1.0)
        super().compile(optimizer=optimizer, **kwargs)

    def get_config(self):
        return {
            "backbone": keras.layers.serialize(self.backbone),
            "sop_dropout": self.sop_dropout_rate,
            "ponder_weight": self.ponder_weight,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)
