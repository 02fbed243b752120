"""Start an ALBERT-ACT from a keras-hub `AlbertBackbone` (object or preset folder).

keras-hub's ALBERT keeps its shared layer as `group_0_inner_layer_0`, a
`TransformerEncoder` whose weights have the same names and shapes as the
block of `AlbertActBackbone` (`albert_act/transformer_block`); embeddings
and pooler have the same paths in both models. Every weight is copied; the
halting unit is new (`keras_act.convert.halting_initialization`).
"""

import json
import os

import keras

from keras_act.checks import check_positive_int
from keras_act.convert.halting_initialization import initialize_halting
from keras_act.models.albert_act_backbone import AlbertActBackbone

KERAS_HUB_LAYER = "group_0_inner_layer_0/"
ACT_BLOCK = "albert_act/transformer_block/"
HALTING_PATHS = ("albert_act/halting_dense/kernel", "albert_act/halting_dense/bias")


def is_keras_hub_albert_preset(path):
    """Whether `path` is a folder saved by keras-hub's `AlbertBackbone.save_to_preset`."""
    config_file = os.path.join(os.fspath(path), "config.json")
    if not os.path.isfile(config_file):
        return False
    try:
        with open(config_file, encoding="utf8") as file:
            config = json.load(file)
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("registered_name") == "keras_hub>AlbertBackbone"


def _load_keras_hub_albert(albert):
    if not isinstance(albert, (str, os.PathLike)):
        return albert, "the AlbertBackbone"
    folder = os.fspath(albert)
    if not os.path.isdir(folder) or not os.path.isfile(os.path.join(folder, "config.json")):
        raise FileNotFoundError(
            f"{folder} is not a keras-hub preset folder (no config.json); pass a saved "
            "preset folder (`AlbertBackbone.save_to_preset`) or an AlbertBackbone."
        )
    import keras_hub

    return keras_hub.models.AlbertBackbone.from_preset(folder), folder


def from_keras_hub_albert(
    albert,
    initial_depth=None,
    max_layers=None,
    act_epsilon=0.01,
    ponder_weight=1e-3,
    dtype=None,
):
    """An `AlbertActBackbone` with the weights of a keras-hub `AlbertBackbone`.

    The shared layer of the ALBERT becomes the ACT block; embeddings,
    embedding projection and pooler are copied; the halting unit is new,
    with a zero kernel and the bias `logit(p)`,
    `p = (1 - act_epsilon) / (initial_depth - 0.5)` (`p = 1 - act_epsilon / 2`
    for `initial_depth == 1`), so every token starts at exactly
    `initial_depth` updates (`keras_act.convert.halting_initialization`).

    Args:
        albert: a `keras_hub.models.AlbertBackbone`, or the path of a local
            preset folder saved by its `save_to_preset` (read with
            `AlbertBackbone.from_preset`; no download). Its `num_groups` and
            `num_inner_repetitions` must be 1: ALBERT-ACT repeats one layer.
        initial_depth: optional int in `[1, max_layers]`, the depth every
            token starts at. Defaults to half the cap, rounded up.
        max_layers: optional int, the ACT cap. Defaults to the ALBERT's
            `num_layers`.
        act_epsilon: float, the halting threshold is `1 - act_epsilon`.
        ponder_weight: float >= 0, the ponder-cost weight tau of the
            training tasks.
        dtype: optional dtype policy of the returned backbone.

    Returns:
        An `AlbertActBackbone`.

    Raises:
        ValueError: for an ALBERT with several different layers, or a model
            that is not a keras-hub `AlbertBackbone`.
        FileNotFoundError: for a path that is not a preset folder.

    Example:

    >>> import keras_hub
    >>> albert = keras_hub.models.AlbertBackbone(
    ...     vocabulary_size=50, num_layers=4, num_heads=2, embedding_dim=8,
    ...     hidden_dim=16, intermediate_dim=32, max_sequence_length=16)
    >>> backbone = from_keras_hub_albert(albert, initial_depth=2)
    >>> backbone.max_layers
    4
    """
    albert, source = _load_keras_hub_albert(albert)
    config = albert.get_config() if hasattr(albert, "get_config") else {}
    missing = [key for key in ("num_layers", "num_groups", "hidden_dim") if key not in config]
    if missing:
        raise ValueError(
            f"{source} is a {type(albert).__name__}, not a keras-hub AlbertBackbone "
            f"(its config has no {missing})."
        )
    for key in ("num_groups", "num_inner_repetitions"):
        if config.get(key, 1) != 1:
            raise ValueError(
                f"{source}: {key}={config[key]}, but ALBERT-ACT repeats one shared "
                f"layer: this ALBERT has num_groups x num_inner_repetitions = "
                f"{config['num_groups'] * config.get('num_inner_repetitions', 1)} "
                "different layers, which no single ACT block can represent. Only "
                "num_groups=1 and num_inner_repetitions=1 are supported."
            )
    if max_layers is None:
        max_layers = config["num_layers"]
    check_positive_int("max_layers", max_layers)
    backbone = AlbertActBackbone(
        vocabulary_size=config["vocabulary_size"],
        embedding_dim=config["embedding_dim"],
        hidden_dim=config["hidden_dim"],
        num_heads=config["num_heads"],
        intermediate_dim=config["intermediate_dim"],
        max_layers=max_layers,
        act_epsilon=act_epsilon,
        activation="gelu_new",  # keras-hub's ALBERT: tanh-approximated GELU
        dropout=config.get("dropout", 0.0),
        max_sequence_length=config["max_sequence_length"],
        num_segments=config["num_segments"],
        layer_norm_epsilon=1e-12,  # keras-hub's ALBERT: 1e-12 everywhere
        ponder_weight=ponder_weight,
        dtype=dtype,
    )
    initialize_halting(backbone, initial_depth)
    sources = {variable.path: variable for variable in albert.weights}
    for variable in backbone.weights:
        if variable.path in HALTING_PATHS:
            continue
        path = variable.path.replace(ACT_BLOCK, KERAS_HUB_LAYER)
        if path not in sources:
            raise ValueError(f"{source} has no weight {path!r} (for {variable.path}).")
        value = sources[path]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"{source}: weight {path!r} has shape {tuple(value.shape)}, but "
                f"{variable.path} has shape {tuple(variable.shape)}."
            )
        variable.assign(keras.ops.convert_to_numpy(value))
    return backbone
