"""Plain ALBERT checkpoints (Hugging Face `model_type: albert`) as ALBERT-ACT.

ALBERT with one layer group of one layer (`num_hidden_groups == 1`,
`inner_group_num == 1`: `albert-base-v2` and the other official ALBERTs)
applies one shared layer `num_hidden_layers` times. That layer becomes the
ACT block of an `AlbertActBackbone`; its state-dict keys
`encoder.albert_layer_groups.0.albert_layers.0.*` are renamed to the
authors' `encoder.albert_layer.*`, so the ALBERT-ACT weight map reads them.
The halting unit is new (`keras_act.convert.halting_initialization`).
"""

from keras_act.checks import check_positive_int

PLAIN_LAYER_PREFIX = "encoder.albert_layer_groups.0.albert_layers.0."
ACT_LAYER_PREFIX = "encoder.albert_layer."
# The attention's layer norm sits in the attention module in plain ALBERT,
# beside it in the authors' ALBERT-ACT layer.
_RENAMED = {"attention.LayerNorm.": "LayerNorm."}


def is_plain_albert(hf_config):
    """Whether a `config.json` dict is a plain ALBERT (no halting unit).

    Example:

    >>> is_plain_albert({"model_type": "albert"})
    True
    >>> is_plain_albert({"model_type": "albert_act", "act_epsilon": 0.01})
    False
    """
    return hf_config.get("model_type") == "albert" and "act_epsilon" not in hf_config


def check_one_shared_layer(hf_config, source, error_class=ValueError):
    """Refuses an ALBERT whose layers are not all one shared layer.

    Args:
        hf_config: dict, the checkpoint's `config.json`.
        source: str, the file named in the message.
        error_class: the exception class raised.

    Raises:
        error_class: for `num_hidden_groups > 1` or `inner_group_num > 1`.

    Example:

    >>> check_one_shared_layer({"num_hidden_groups": 2}, "config.json")
    Traceback (most recent call last):
    ...
    ValueError: config.json: num_hidden_groups=2, but ALBERT-ACT repeats one shared layer: this ALBERT has 2 different layers (num_hidden_groups x inner_group_num), which no single ACT block can represent. Only num_hidden_groups=1 and inner_group_num=1 are supported.
    """
    groups = hf_config.get("num_hidden_groups", 1)
    inner = hf_config.get("inner_group_num", 1)
    for key, value in (("num_hidden_groups", groups), ("inner_group_num", inner)):
        if value != 1:
            count = groups * inner if isinstance(groups, int) and isinstance(inner, int) else "several"
            raise error_class(
                f"{source}: {key}={value!r}, but ALBERT-ACT repeats one shared layer: "
                f"this ALBERT has {count} different layers (num_hidden_groups x "
                "inner_group_num), which no single ACT block can represent. Only "
                "num_hidden_groups=1 and inner_group_num=1 are supported."
            )


def plain_albert_backbone_config(hf_config, max_layers=None, act_epsilon=0.01):
    """`AlbertActBackbone` arguments for a plain ALBERT `config.json`.

    Args:
        hf_config: dict, a plain ALBERT `config.json` (one shared layer).
        max_layers: optional int, the ACT cap. Defaults to the checkpoint's
            `num_hidden_layers` (the depth ALBERT was trained at).
        act_epsilon: float, the halting threshold is `1 - act_epsilon`.

    Returns:
        A dict of `AlbertActBackbone` constructor arguments (no ponder weight).

    Raises:
        KeyError: for a config without one of ALBERT's sizes.

    Example:

    >>> config = plain_albert_backbone_config({
    ...     "vocab_size": 30000, "embedding_size": 128, "hidden_size": 768,
    ...     "num_attention_heads": 12, "intermediate_size": 3072,
    ...     "num_hidden_layers": 12})
    >>> config["max_layers"], config["activation"]
    (12, 'gelu_new')
    """
    if max_layers is None:
        max_layers = int(hf_config["num_hidden_layers"])
    check_positive_int("max_layers", max_layers)
    return {
        "vocabulary_size": int(hf_config["vocab_size"]),
        "embedding_dim": int(hf_config["embedding_size"]),
        "hidden_dim": int(hf_config["hidden_size"]),
        "num_heads": int(hf_config["num_attention_heads"]),
        "intermediate_dim": int(hf_config["intermediate_size"]),
        "max_layers": max_layers,
        "act_epsilon": float(act_epsilon),
        "activation": hf_config.get("hidden_act", "gelu_new"),
        "dropout": float(hf_config.get("hidden_dropout_prob", 0.0)),
        "max_sequence_length": int(hf_config.get("max_position_embeddings", 512)),
        "num_segments": int(hf_config.get("type_vocab_size", 2)),
        "layer_norm_epsilon": float(hf_config.get("layer_norm_eps", 1e-12)),
    }


def rename_plain_albert_keys(weights):
    """Renames a plain ALBERT backbone state dict to the authors' ACT keys.

    Keys of the shared layer lose `albert_layer_groups.0.albert_layers.0`
    (and the attention's `LayerNorm` moves up one level); other keys are
    kept (a key of a second group or layer stays as it is, and the weight
    map then names it as unexpected).

    Args:
        weights: dict `{key: array}` without the `albert.` prefix.

    Returns:
        A new dict.

    Example:

    >>> sorted(rename_plain_albert_keys({
    ...     "encoder.albert_layer_groups.0.albert_layers.0.ffn.weight": 1,
    ...     "encoder.albert_layer_groups.0.albert_layers.0.attention.LayerNorm.bias": 2,
    ...     "pooler.bias": 3}))
    ['encoder.albert_layer.LayerNorm.bias', 'encoder.albert_layer.ffn.weight', 'pooler.bias']
    """
    renamed = {}
    for key, value in weights.items():
        if key.startswith(PLAIN_LAYER_PREFIX):
            rest = key[len(PLAIN_LAYER_PREFIX) :]
            for old, new in _RENAMED.items():
                if rest.startswith(old):
                    rest = new + rest[len(old) :]
            key = ACT_LAYER_PREFIX + rest
        renamed[key] = value
    return renamed
