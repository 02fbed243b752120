"""`AlbertActPretrainer`: the backbone with ALBERT's MLM and SOP heads."""

import keras
from keras_hub.layers import MaskedLMHead

from keras_act.layers.activations import get_activation
from keras_act.layers.albert_act import albert_act_kernel_initializer


@keras.saving.register_keras_serializable(package="keras_act")
class AlbertActPretrainer(keras.Model):
    """ALBERT-ACT with its pre-training heads (masked LM and sentence order).

    The masked-LM head (dense to `embedding_dim`, activation, layer norm, then
    the transposed token embedding plus a bias: the decoder is tied to the
    input embeddings, as in ALBERT) reads the tokens at `mask_positions`; the
    sentence-order head is a dense layer on the pooled output. The per-token
    `updates` and `remainders` of the backbone are passed through, so the
    ponder cost can be added to the loss.

    Args:
        backbone: a `keras_act.AlbertActBackbone`.
        sop_dropout: float, dropout before the sentence-order classifier
            (ALBERT's `classifier_dropout_prob`). Defaults to `0.1`.
        **kwargs: other keyword arguments of `keras.Model`.

    Inputs: a dict of `token_ids`, `segment_ids`, `padding_mask`
    (`[batch, seq]`) and `mask_positions` (`[batch, num_predictions]`, int).

    Returns: a dict of `mlm_logits` `[batch, num_predictions, vocabulary]`,
    `sop_logits` `[batch, 2]`, `updates` and `remainders` `[batch, seq]`.

    Example:

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

    def __init__(self, backbone, sop_dropout=0.1, **kwargs):
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
        self.sop_head = keras.layers.Dense(
            2,
            kernel_initializer=albert_act_kernel_initializer(),
            dtype=backbone.dtype_policy,
            name="sop_head",
        )

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

    def get_config(self):
        return {
            "backbone": keras.layers.serialize(self.backbone),
            "sop_dropout": self.sop_dropout_rate,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)
