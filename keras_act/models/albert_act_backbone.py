"""`AlbertActBackbone`: ALBERT embeddings, `AlbertAct` and the pooler."""

import copy
import json
import os

import keras
from keras_hub.layers import PositionEmbedding, ReversibleEmbedding
from keras_hub.models import Backbone

from keras_act.checks import check_non_negative_float, check_positive_int
from keras_act.layers.albert_act import AlbertAct
from keras_act.layers.initializers import albert_act_kernel_initializer
from keras_act.layers.input_checks import LosslessInputCast, TokenInputCheck
from keras_act.models.albert_act_presets import backbone_presets


@keras.saving.register_keras_serializable(package="keras_act")
class AlbertActBackbone(LosslessInputCast, Backbone):
    """ALBERT-ACT encoder network: ALBERT with adaptive, per-token depth.

    Token, position and segment embeddings are summed, layer-normalized and
    projected to `hidden_dim`; one shared ALBERT block is then applied under
    Adaptive Computation Time (`keras_act.AlbertAct`), at most `max_layers`
    times per token; a tanh pooler reads the first (`[CLS]`) token.

    The model takes a dict of `token_ids`, `segment_ids` and `padding_mask`
    (`[batch, seq]`) and returns a dict of `sequence_output`
    `[batch, seq, hidden_dim]`, `pooled_output` `[batch, hidden_dim]`, and the
    float32 per-token `updates` (how many times the block ran on each token,
    0 on padding) and `remainders`.

    Inputs are checked before use (`keras_act.layers.input_checks`): ids
    must be integers that int32 holds (an int64 `2**32 + 5` or a float
    `5.99` is refused, not cast to 5), in range of the vocabulary and
    segments; the padding mask must be 0/1 or boolean; sequences need 1 to
    `max_sequence_length` positions. A batch of 0 sequences, or one of
    padding only, is fine. Violations raise `tf.errors.InvalidArgumentError`
    naming the input and the bad value.

    Reference: Simoulin & Crabbé (2021), "How Many Layers and Why? An Analysis
    of the Model Depth in Transformers".

    Args:
        vocabulary_size: int, size of the token vocabulary.
        embedding_dim: int, size of the factorized embeddings.
        hidden_dim: int, size of the transformer hidden states.
        num_heads: int, number of attention heads.
        intermediate_dim: int, size of the feed-forward hidden layer.
        max_layers: int, cap on the number of block applications per token.
        act_epsilon: float, halting threshold is `1 - act_epsilon`.
            Defaults to `0.01`.
        activation: str, feed-forward activation. Defaults to `"gelu_new"`.
        dropout: float, dropout of embeddings and block. Defaults to `0.0`.
        max_sequence_length: int, size of the position table. Defaults to 512.
        num_segments: int, number of segment ids. Defaults to 2.
        layer_norm_epsilon: float. Defaults to `1e-12`.
        ponder_weight: float, the weight tau of the ponder cost
            `updates + remainders` that training tasks add to their loss; the
            backbone itself does not use it. Defaults to `1e-3`.
        skip_halted: `None`, `True`, `False`, `"static"` or `"dynamic"`:
            whether the shared block runs on running tokens only, and how
            (see `keras_act.AlbertAct`). Defaults to `None`: automatic (the
            data-dependent skip path outside XLA, in inference and training).
        fixed_depth: `None` (ACT, the default) or an int `n`: halting off,
            every real token gets exactly `n` updates, each replacing its
            state by the block output: plain ALBERT with one shared layer
            applied `n` times (`updates` is `n` on real tokens, `remainders`
            0; see `keras_act.AlbertAct`). `n` may exceed `max_layers`.
            Settable on a trained backbone: `backbone.fixed_depth = 12`
            ("run every token 12 times"), `None` to return to ACT; saved in
            the config.
        dtype: str or `keras.mixed_precision.DTypePolicy`, the dtype policy.
        **kwargs: other keyword arguments of `keras.Model` (e.g. `name`).

    Example:

    >>> import keras_act
    >>> import numpy as np
    >>> backbone = keras_act.AlbertActBackbone(
    ...     vocabulary_size=300, embedding_dim=16, hidden_dim=32,
    ...     num_heads=4, intermediate_dim=64, max_layers=6,
    ... )
    >>> outputs = backbone({
    ...     "token_ids": np.array([[2, 57, 81, 3, 0]]),
    ...     "segment_ids": np.zeros((1, 5), "int32"),
    ...     "padding_mask": np.array([[1, 1, 1, 1, 0]]),
    ... })
    >>> outputs["updates"].shape
    TensorShape([1, 5])
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim,
        hidden_dim,
        num_heads,
        intermediate_dim,
        max_layers,
        act_epsilon=0.01,
        activation="gelu_new",
        dropout=0.0,
        max_sequence_length=512,
        num_segments=2,
        layer_norm_epsilon=1e-12,
        ponder_weight=1e-3,
        skip_halted=None,
        fixed_depth=None,
        dtype=None,
        **kwargs,
    ):
        for name, value in (
            ("vocabulary_size", vocabulary_size),
            ("embedding_dim", embedding_dim),
            ("max_sequence_length", max_sequence_length),
            ("num_segments", num_segments),
        ):
            check_positive_int(name, value)
        check_non_negative_float("ponder_weight", ponder_weight)

        # === Layers ===
        self.input_check = TokenInputCheck(
            vocabulary_size=vocabulary_size,
            num_segments=num_segments,
            max_sequence_length=max_sequence_length,
            dtype=dtype,
            name="input_check",
        )
        self.token_embedding = ReversibleEmbedding(
            input_dim=vocabulary_size,
            output_dim=embedding_dim,
            embeddings_initializer=albert_act_kernel_initializer(),
            dtype=dtype,
            name="token_embedding",
        )
        self.position_embedding = PositionEmbedding(
            sequence_length=max_sequence_length,
            initializer=albert_act_kernel_initializer(),
            dtype=dtype,
            name="position_embedding",
        )
        self.segment_embedding = keras.layers.Embedding(
            input_dim=num_segments,
            output_dim=embedding_dim,
            embeddings_initializer=albert_act_kernel_initializer(),
            dtype=dtype,
            name="segment_embedding",
        )
        self.embeddings_add = keras.layers.Add(dtype=dtype, name="embeddings_add")
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon,
            dtype=dtype,
            name="embeddings_layer_norm",
        )
        self.embeddings_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="embeddings_dropout"
        )
        self.embeddings_projection = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=albert_act_kernel_initializer(),
            dtype=dtype,
            name="embedding_projection",
        )
        self.encoder = AlbertAct(
            hidden_dim=hidden_dim,
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            max_layers=max_layers,
            act_epsilon=act_epsilon,
            activation=activation,
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            skip_halted=skip_halted,
            fixed_depth=fixed_depth,
            dtype=dtype,
            name="albert_act",
        )
        self.pooled_dense = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=albert_act_kernel_initializer(),
            activation="tanh",
            dtype=dtype,
            name="pooled_dense",
        )

        # === Functional Model ===
        token_id_input = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_id_input = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask_input = keras.Input(
            shape=(None,), dtype="int32", name="padding_mask"
        )
        token_ids, segment_ids, padding_mask = self.input_check(
            token_id_input, segment_id_input, padding_mask_input
        )
        tokens = self.token_embedding(token_ids)
        positions = self.position_embedding(tokens)
        segments = self.segment_embedding(segment_ids)
        x = self.embeddings_add((tokens, segments, positions))
        x = self.embeddings_layer_norm(x)
        x = self.embeddings_dropout(x)
        x = self.embeddings_projection(x)
        encoded = self.encoder(x, padding_mask=padding_mask)
        sequence_output = encoded["sequence_output"]
        pooled_output = self.pooled_dense(sequence_output[:, 0, :])
        super().__init__(
            inputs={
                "token_ids": token_id_input,
                "segment_ids": segment_id_input,
                "padding_mask": padding_mask_input,
            },
            outputs={
                "sequence_output": sequence_output,
                "pooled_output": pooled_output,
                "updates": encoded["updates"],
                "remainders": encoded["remainders"],
            },
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.max_layers = max_layers
        self.act_epsilon = act_epsilon
        self.activation = activation
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.layer_norm_epsilon = layer_norm_epsilon
        self.ponder_weight = ponder_weight
        self.skip_halted = skip_halted

    @property
    def fixed_depth(self):
        """`None` (ACT) or the number of updates every real token gets.

        Setting it switches a built or trained backbone between ACT and
        fixed depth (the encoder's `fixed_depth`); Keras' cached
        `predict`/`evaluate`/`fit` functions of this backbone are dropped so
        that they are traced again. Functions traced elsewhere keep the
        graph they traced: for a task, set `task.backbone.fixed_depth` and
        then `task.predict_function = None` (or `compile()` the task again,
        which drops its functions); wrap your own `tf.function`s anew.

        Example:

        >>> import keras_act
        >>> import numpy as np
        >>> backbone = keras_act.AlbertActBackbone(
        ...     vocabulary_size=300, embedding_dim=16, hidden_dim=32,
        ...     num_heads=4, intermediate_dim=64, max_layers=6,
        ... )
        >>> backbone.fixed_depth = 3
        >>> outputs = backbone({
        ...     "token_ids": np.array([[2, 57, 81, 3, 0]]),
        ...     "segment_ids": np.zeros((1, 5), "int32"),
        ...     "padding_mask": np.array([[1, 1, 1, 1, 0]]),
        ... })
        >>> outputs["updates"].numpy().tolist()
        [[3.0, 3.0, 3.0, 3.0, 0.0]]
        """
        return self.encoder.fixed_depth

    @fixed_depth.setter
    def fixed_depth(self, value):
        self.encoder.fixed_depth = value
        for name in ("predict_function", "test_function", "train_function"):
            if getattr(self, name, None) is not None:
                setattr(self, name, None)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "max_layers": self.max_layers,
                "act_epsilon": self.act_epsilon,
                "activation": self.activation,
                "dropout": self.dropout,
                "max_sequence_length": self.max_sequence_length,
                "num_segments": self.num_segments,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "ponder_weight": self.ponder_weight,
                "skip_halted": self.skip_halted,
                "fixed_depth": self.fixed_depth,
            }
        )
        return config

    @classmethod
    def architecture_presets(cls):
        """The built-in architecture presets, name to config (random weights)."""
        return {name: copy.deepcopy(p["config"]) for name, p in backbone_presets.items()}

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Builds a backbone from a built-in preset name or a preset directory.

        Built-in names (`albert_act_tiny`, `albert_act_small`,
        `albert_act_base`) give the paper's architecture with random weights:
        no weights can be downloaded. A local directory written by
        `save_to_preset` restores architecture and weights.

        Args:
            preset: str, a built-in preset name or a local directory.
            load_weights: bool, whether to load the weights of a directory
                preset. Defaults to `True`.
            **kwargs: config values that override the preset's (e.g.
                `dtype`, `dropout`).

        Returns:
            An `AlbertActBackbone`.

        Example:

        >>> import keras_act
        >>> backbone = keras_act.AlbertActBackbone.from_preset("albert_act_tiny")
        >>> backbone.max_layers
        6
        """
        if preset in backbone_presets:
            config = cls.architecture_presets()[preset]
            config.update(kwargs)
            return cls(**config)
        if "://" not in str(preset) and not os.path.isdir(preset):
            raise ValueError(
                f"Unknown preset {preset!r}: not a built-in preset "
                f"({', '.join(sorted(backbone_presets))}) nor a directory written "
                "by `save_to_preset`."
            )
        if kwargs.get("dtype") is None and os.path.isdir(preset):
            # keras-hub's loader replaces the saved dtype by `None` here, which
            # would rebuild a quantized backbone's layers unquantized.
            with open(os.path.join(preset, "config.json"), encoding="utf-8") as file:
                saved = json.load(file)["config"].get("dtype")
            if isinstance(saved, dict) and saved.get("class_name") == "DTypePolicyMap":
                kwargs["dtype"] = keras.dtype_policies.deserialize(saved)
        return super().from_preset(preset, load_weights=load_weights, **kwargs)
