"""Import of the authors' checkpoints (Hugging Face `asi/albert-act-*` layout),
and of plain ALBERT checkpoints (`model_type: albert`) with a new halting unit."""

import os
import warnings

import numpy as np

from keras_act.convert.checkpoint_files import read_weights
from keras_act.convert.halting_initialization import initialize_halting
from keras_act.convert.plain_albert import (
    check_one_shared_layer,
    is_plain_albert,
    plain_albert_backbone_config,
    rename_plain_albert_keys,
)
from keras_act.json_files import read_json_file
from keras_act.models.albert_act_backbone import AlbertActBackbone
from keras_act.models.albert_act_presets import backbone_presets
from keras_act.models.albert_act_pretrainer import AlbertActPretrainer

# Weight files of a checkpoint folder, in order of preference.
BACKBONE_FILES = ("model.safetensors", "pytorch_model.bin", "tf_model.h5")
# Files that may hold the pre-training heads next to the backbone.
HEAD_FILES = ("pretraining_model.safetensors", "pretraining_heads.safetensors")

_IGNORED_KEYS = ("embeddings.position_ids", "embeddings.token_type_ids")

# PyTorch key -> (Keras weight path, kind). Kinds: "copy" (same layout),
# "linear" (a Linear weight [out, in], transposed to a Keras kernel and
# reshaped to the kernel's shape), "reshape" (a bias reshaped to the
# kernel's layout, for attention heads).
_BLOCK = "albert_act/transformer_block/"
_ATTENTION = _BLOCK + "self_attention_layer/"
BACKBONE_WEIGHT_MAP = {
    "embeddings.word_embeddings.weight": ("token_embedding/embeddings", "copy"),
    "embeddings.position_embeddings.weight": ("position_embedding/embeddings", "copy"),
    "embeddings.token_type_embeddings.weight": ("segment_embedding/embeddings", "copy"),
    "embeddings.LayerNorm.weight": ("embeddings_layer_norm/gamma", "copy"),
    "embeddings.LayerNorm.bias": ("embeddings_layer_norm/beta", "copy"),
    "encoder.embedding_hidden_mapping_in.weight": ("embedding_projection/kernel", "linear"),
    "encoder.embedding_hidden_mapping_in.bias": ("embedding_projection/bias", "copy"),
    "encoder.albert_layer.attention.query.weight": (_ATTENTION + "query/kernel", "linear"),
    "encoder.albert_layer.attention.query.bias": (_ATTENTION + "query/bias", "reshape"),
    "encoder.albert_layer.attention.key.weight": (_ATTENTION + "key/kernel", "linear"),
    "encoder.albert_layer.attention.key.bias": (_ATTENTION + "key/bias", "reshape"),
    "encoder.albert_layer.attention.value.weight": (_ATTENTION + "value/kernel", "linear"),
    "encoder.albert_layer.attention.value.bias": (_ATTENTION + "value/bias", "reshape"),
    "encoder.albert_layer.attention.dense.weight": (
        _ATTENTION + "attention_output/kernel",
        "linear_out",
    ),
    "encoder.albert_layer.attention.dense.bias": (_ATTENTION + "attention_output/bias", "copy"),
    "encoder.albert_layer.LayerNorm.weight": (_BLOCK + "self_attention_layer_norm/gamma", "copy"),
    "encoder.albert_layer.LayerNorm.bias": (_BLOCK + "self_attention_layer_norm/beta", "copy"),
    "encoder.albert_layer.ffn.weight": (_BLOCK + "feedforward_intermediate_dense/kernel", "linear"),
    "encoder.albert_layer.ffn.bias": (_BLOCK + "feedforward_intermediate_dense/bias", "copy"),
    "encoder.albert_layer.ffn_output.weight": (_BLOCK + "feedforward_output_dense/kernel", "linear"),
    "encoder.albert_layer.ffn_output.bias": (_BLOCK + "feedforward_output_dense/bias", "copy"),
    "encoder.albert_layer.full_layer_layer_norm.weight": (
        _BLOCK + "feedforward_layer_norm/gamma",
        "copy",
    ),
    "encoder.albert_layer.full_layer_layer_norm.bias": (
        _BLOCK + "feedforward_layer_norm/beta",
        "copy",
    ),
    "encoder.albert_layer.act.dense.weight": ("albert_act/halting_dense/kernel", "linear"),
    "encoder.albert_layer.act.dense.bias": ("albert_act/halting_dense/bias", "copy"),
    "pooler.weight": ("pooled_dense/kernel", "linear"),
    "pooler.bias": ("pooled_dense/bias", "copy"),
}
HEAD_WEIGHT_MAP = {
    "predictions.dense.weight": ("mlm_head/intermediate_dense/kernel", "linear"),
    "predictions.dense.bias": ("mlm_head/intermediate_dense/bias", "copy"),
    "predictions.LayerNorm.weight": ("mlm_head/intermediate_layer_norm/gamma", "copy"),
    "predictions.LayerNorm.bias": ("mlm_head/intermediate_layer_norm/beta", "copy"),
    "predictions.bias": ("mlm_head/output_bias", "copy"),
    "sop_classifier.classifier.weight": ("sop_head/kernel", "linear"),
    "sop_classifier.classifier.bias": ("sop_head/bias", "copy"),
}
HALTING_KEYS = ("encoder.albert_layer.act.dense.weight", "encoder.albert_layer.act.dense.bias")
SOP_KEYS = ("sop_classifier.classifier.weight", "sop_classifier.classifier.bias")
POOLER_KEYS = ("pooler.weight", "pooler.bias")
# Tied copies that a full pre-training state dict may hold: they must equal
# the weight they are tied to.
TIED_KEYS = {
    "predictions.decoder.weight": "embeddings.word_embeddings.weight",
    "predictions.decoder.bias": "predictions.bias",
}


# Keys of a checkpoint's config.json that may hold the ponder-cost weight
# (the authors' pre-training script calls it `tau`).
PONDER_WEIGHT_KEYS = ("ponder_weight", "tau")
# What identifies a preset's model: its geometry and iteration cap.
_GEOMETRY_KEYS = (
    "vocabulary_size",
    "embedding_dim",
    "hidden_dim",
    "num_heads",
    "intermediate_dim",
    "max_layers",
)
HUB_UNREACHABLE = (
    "cannot reach the Hugging Face hub; pass a local folder or set "
    "HF_HUB_OFFLINE with a cached copy"
)


class CheckpointError(ValueError):
    """A checkpoint does not match the ALBERT-ACT architecture."""


class HubUnreachableError(ConnectionError):
    """An `hf://` checkpoint is neither reachable nor in the local cache."""


def backbone_config_from_hf(hf_config, max_layers=None):
    """Maps a Hugging Face ALBERT-ACT or plain ALBERT `config.json` to backbone kwargs.

    Args:
        hf_config: dict, the content of the checkpoint's `config.json`.
        max_layers: optional int, the ACT cap of a plain ALBERT (`model_type:
            albert`; default: its `num_hidden_layers`). An ALBERT-ACT
            checkpoint's cap is its `num_hidden_layers`: passing
            `max_layers` for one is an error.

    Returns:
        A dict of `AlbertActBackbone` constructor arguments.

    Raises:
        CheckpointError: for a config of another architecture, or an ALBERT
            of several different layers.
    """
    model_type = hf_config.get("model_type")
    if is_plain_albert(hf_config):
        check_one_shared_layer(hf_config, "config.json", CheckpointError)
        _check_absolute_positions(hf_config)
        try:
            return plain_albert_backbone_config(hf_config, max_layers=max_layers)
        except KeyError as error:
            raise CheckpointError(
                f"config.json lacks the key {error.args[0]!r} of an ALBERT config."
            ) from error
    if model_type != "albert_act" and not (
        model_type == "albert" and "act_epsilon" in hf_config
    ):
        raise CheckpointError(
            "Not an ALBERT or ALBERT-ACT checkpoint: config.json has "
            f"model_type={model_type!r} (expected 'albert_act', or 'albert')."
        )
    if max_layers is not None:
        raise CheckpointError(
            f"max_layers={max_layers!r} applies to plain ALBERT checkpoints; an "
            "ALBERT-ACT checkpoint's cap is its num_hidden_layers="
            f"{hf_config.get('num_hidden_layers')!r}."
        )
    for key, expected in (
        ("num_hidden_groups", 1),
        ("inner_group_num", 1),
        ("position_embedding_type", "absolute"),
    ):
        if hf_config.get(key, expected) != expected:
            raise CheckpointError(
                f"Unsupported ALBERT-ACT config: {key}={hf_config[key]!r} "
                f"(only {expected!r} is supported)."
            )
    try:
        return {
            "vocabulary_size": int(hf_config["vocab_size"]),
            "embedding_dim": int(hf_config["embedding_size"]),
            "hidden_dim": int(hf_config["hidden_size"]),
            "num_heads": int(hf_config["num_attention_heads"]),
            "intermediate_dim": int(hf_config["intermediate_size"]),
            "max_layers": int(hf_config["num_hidden_layers"]),
            "act_epsilon": float(hf_config.get("act_epsilon", 0.01)),
            "activation": hf_config.get("hidden_act", "gelu_new"),
            "dropout": float(hf_config.get("hidden_dropout_prob", 0.0)),
            "max_sequence_length": int(hf_config.get("max_position_embeddings", 512)),
            "num_segments": int(hf_config.get("type_vocab_size", 2)),
            "layer_norm_epsilon": float(hf_config.get("layer_norm_eps", 1e-12)),
        }
    except KeyError as error:
        raise CheckpointError(
            f"config.json lacks the key {error.args[0]!r} of an ALBERT-ACT config."
        ) from error


def _check_absolute_positions(hf_config):
    value = hf_config.get("position_embedding_type", "absolute")
    if value != "absolute":
        raise CheckpointError(
            f"Unsupported ALBERT config: position_embedding_type={value!r} "
            "(only 'absolute' is supported)."
        )


def ponder_weight_for(hf_config, backbone_config):
    """The ponder-cost weight tau of a checkpoint, and where it comes from.

    The authors' `config.json` files do not record tau; their three models
    used 1e-3 / 5e-4 / 2.5e-4 (tiny / small / base). A config that has
    `ponder_weight` (or `tau`) gives it; otherwise the built-in preset of the
    same geometry and iteration cap does; otherwise the backbone's default.

    Args:
        hf_config: dict, the checkpoint's `config.json`.
        backbone_config: dict, the backbone arguments made from it
            (`backbone_config_from_hf`).

    Returns:
        A tuple `(ponder_weight, source)`, `source` a short phrase such as
        `"config.json 'tau'"` or `"preset albert_act_base"`.

    Raises:
        CheckpointError: for a ponder weight in config.json that is not a
            number >= 0.

    Example:

    >>> config = dict(AlbertActBackbone.architecture_presets()["albert_act_base"])
    >>> ponder_weight_for({}, config)
    (0.00025, 'preset albert_act_base')
    """
    for key in PONDER_WEIGHT_KEYS:
        if key in hf_config:
            value = hf_config[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise CheckpointError(
                    f"config.json: {key}={value!r} is not a ponder weight (a number >= 0)."
                )
            return float(value), f"config.json {key!r}"
    for name, preset in backbone_presets.items():
        if all(preset["config"][key] == backbone_config[key] for key in _GEOMETRY_KEYS):
            return preset["config"]["ponder_weight"], f"preset {name}"
    return 1e-3, "default: no ponder weight in config.json, no preset of this geometry"


def read_hf_config(config_path):
    """Reads a checkpoint's `config.json`, which must be a JSON object.

    Raises:
        CheckpointError: naming the file, for invalid JSON or JSON that is
            not an object.
    """
    config = read_json_file(config_path, error_class=CheckpointError)
    if not isinstance(config, dict):
        raise CheckpointError(
            f"{config_path} holds a JSON {type(config).__name__}, not an object "
            "of ALBERT-ACT settings."
        )
    return config


def split_state_dict(weights):
    """Splits a state dict into backbone weights and head weights.

    Backbone keys may carry the `albert.` prefix of `AlbertActForPreTraining`;
    it is removed. Buffers that are not weights (`position_ids`) are dropped.
    """
    backbone, heads = {}, {}
    for key, value in weights.items():
        name = key[len("albert.") :] if key.startswith("albert.") else key
        if name in _IGNORED_KEYS:
            continue
        if name.startswith(("predictions.", "sop_classifier.")):
            heads[name] = value
        else:
            backbone[name] = value
    return backbone, heads


def assign_weights(model, weights, weight_map, source):
    """Assigns checkpoint arrays to a model's variables through `weight_map`.

    Raises:
        CheckpointError: naming the key for a missing, unexpected or wrongly
            shaped tensor.
    """
    variables = {variable.path: variable for variable in model.weights}
    missing = sorted(set(weight_map) - set(weights))
    if missing:
        raise CheckpointError(f"{source}: missing tensor(s) {missing}.")
    unexpected = sorted(set(weights) - set(weight_map))
    if unexpected:
        raise CheckpointError(f"{source}: unexpected tensor(s) {unexpected}.")
    for key, (path, kind) in weight_map.items():
        variable = variables[path]
        target = tuple(variable.shape)
        array = np.asarray(weights[key])
        expected = _checkpoint_shape(target, kind)
        if tuple(array.shape) != expected:
            raise CheckpointError(
                f"{source}: tensor {key!r} has shape {tuple(array.shape)}, "
                f"but the model expects {expected} (for {path} of shape {target})."
            )
        if kind in ("linear", "linear_out"):
            array = array.T
        variable.assign(array.reshape(target).astype(variable.dtype))


def _checkpoint_shape(target, kind):
    """The PyTorch shape that maps onto a Keras variable of shape `target`."""
    if kind == "linear":  # kernel [in, *out] <- weight [prod(out), in]
        return (int(np.prod(target[1:])), target[0])
    if kind == "linear_out":  # kernel [*in, out] <- weight [out, prod(in)]
        return (target[-1], int(np.prod(target[:-1])))
    if kind == "reshape":
        return (int(np.prod(target)),)
    return target


def resolve_checkpoint(path):
    """Turns `path` into `(config_path, weight_file)`.

    `path` is a checkpoint folder, a weight file inside one, or
    `hf://owner/name` (downloaded with `huggingface_hub`, which also serves
    it from its cache offline with `HF_HUB_OFFLINE=1`). A `pathlib.Path`
    is accepted too.
    """
    path = os.fspath(path)
    if path.startswith("hf://"):
        return _download_from_hub(path[len("hf://") :])
    if os.path.isfile(path):
        folder = os.path.dirname(os.path.abspath(path))
        return os.path.join(folder, "config.json"), path
    if not os.path.isdir(path):
        raise FileNotFoundError(f"No checkpoint folder or file at {path!r}.")
    for name in BACKBONE_FILES:
        if os.path.isfile(os.path.join(path, name)):
            return os.path.join(path, "config.json"), os.path.join(path, name)
    raise FileNotFoundError(
        f"{path} holds none of the weight files {list(BACKBONE_FILES)}."
    )


def _download_from_hub(repo_id):
    try:
        from huggingface_hub import constants, hf_hub_download
        from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError
    except ImportError as error:
        raise ImportError(
            "Loading `hf://` checkpoints needs `huggingface_hub` "
            "(pip install huggingface_hub)."
        ) from error
    revision = None
    if "@" in repo_id:
        repo_id, revision = repo_id.split("@", 1)
    # Without a network, huggingface_hub retries five times with back-off
    # before it fails: ask once, and fall back to the cache at once.
    local_only = constants.HF_HUB_OFFLINE or not _hub_reachable(constants.ENDPOINT)

    def download(name):
        try:
            return hf_hub_download(
                repo_id, name, revision=revision, local_files_only=local_only
            )
        except LocalEntryNotFoundError as error:
            if not local_only and not isinstance(error.__cause__, OSError):
                raise
            reason = (
                "HF_HUB_OFFLINE is set"
                if constants.HF_HUB_OFFLINE
                else f"{constants.ENDPOINT} does not answer"
            )
            raise HubUnreachableError(
                f"hf://{repo_id}: {HUB_UNREACHABLE} ({reason}, and {name} is not "
                "in the local cache)."
            ) from None

    config_path = download("config.json")
    errors, unreachable = [], None
    for name in BACKBONE_FILES:
        try:
            return config_path, download(name)
        except HubUnreachableError as error:
            unreachable = error
        except (EntryNotFoundError, LocalEntryNotFoundError) as error:
            errors.append(f"{name}: {type(error).__name__}")
    if unreachable is not None:
        raise unreachable
    raise FileNotFoundError(
        f"hf://{repo_id} has none of {list(BACKBONE_FILES)} ({'; '.join(errors)})."
    )


def _hub_reachable(endpoint):
    """Whether one request to the hub gets any answer (within the hub's timeout)."""
    import requests
    from huggingface_hub import constants

    try:
        requests.head(endpoint, timeout=constants.HF_HUB_ETAG_TIMEOUT, allow_redirects=False)
    except requests.RequestException:
        return False
    return True


def _allow_new_weights(weight_map, weights, keys, source, what):
    """Drops `keys` from `weight_map` when `weights` has none of them, with a warning.

    Plain ALBERT checkpoints saved by `AlbertForMaskedLM` have no pooler and
    no sentence-order head: those layers keep their fresh initialisation.
    """
    if any(key in weights for key in keys):
        return
    for key in keys:
        weight_map.pop(key)
    warnings.warn(
        f"{source} has no {what} ({', '.join(keys)}): it starts from random weights.",
        stacklevel=3,
    )


def _find_heads(weight_file, heads):
    """Head weights: from the weight file itself, or from a file beside it."""
    if heads:
        return heads, weight_file
    folder = os.path.dirname(weight_file)
    for name in HEAD_FILES:
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate):
            _, found = split_state_dict(read_weights(candidate))
            if found:
                return found, candidate
    return {}, None


def load_hf_checkpoint(
    path,
    pretraining_heads=False,
    transpose_pooler=False,
    dtype=None,
    initial_depth=None,
    max_layers=None,
):
    """Loads an ALBERT-ACT or plain ALBERT checkpoint of the Hugging Face layout.

    Reads `config.json` and the weights of a checkpoint folder (in the layout
    of the hub models `asi/albert-act-tiny|small|base`): `model.safetensors`,
    else `pytorch_model.bin` (only with `torch.load(weights_only=True)`),
    else `tf_model.h5`. Every tensor is checked: a missing, unexpected or
    wrongly shaped one raises `CheckpointError` naming its key and shapes;
    an unreadable file (truncated, not JSON, not a state dict) an error
    naming the file. The backbone's `ponder_weight` (tau, used by the
    training tasks) comes from `ponder_weight_for`: the config's value when
    it has one, else the paper's value for the preset of the same geometry
    (1e-3 / 5e-4 / 2.5e-4 for tiny / small / base).

    A plain ALBERT (`model_type: albert`, e.g. `albert-base-v2`, saved by
    `AlbertModel` or `AlbertForPreTraining`) is read too: its one shared
    layer becomes the ACT block, and the halting unit, which ALBERT does not
    have, is new: a zero kernel and the bias
    `logit(p)`, `p = (1 - act_epsilon) / (initial_depth - 0.5)`, so every
    token starts at exactly `initial_depth` updates
    (`keras_act.convert.halting_initialization`). An ALBERT with
    `num_hidden_groups > 1` or `inner_group_num > 1` has several different
    layers and is refused. With `pretraining_heads=True` the MLM head is
    read from the checkpoint; a pooler or sentence-order head absent from it
    (as in `AlbertForMaskedLM` checkpoints) starts from random weights, with
    a warning.

    Args:
        path: str, a checkpoint folder, a weight file in one, or
            `"hf://owner/name"` (e.g. `"hf://asi/albert-act-base"`), fetched
            with `huggingface_hub` (from its cache when `HF_HUB_OFFLINE=1`);
            a hub that cannot be reached raises `HubUnreachableError`
            at once, unless the files are cached.
        pretraining_heads: bool, also load the masked-LM and sentence-order
            heads (from the weight file, or from `pretraining_model.safetensors`
            / `pretraining_heads.safetensors` beside it) and return an
            `AlbertActPretrainer`.
        transpose_pooler: bool, read `pooler.weight` as `[in, out]`. The
            authors' conversion notebook did not transpose the pooler of the
            published PyTorch checkpoints; set this if their pooled outputs
            look wrong. Defaults to `False` (the layout of a plain
            `save_pretrained`, as in the reference fixtures).
        dtype: optional dtype policy of the returned model.
        initial_depth: optional int in `[1, max_layers]`, for a plain ALBERT
            only: the depth every token starts at. Defaults to half the cap,
            rounded up.
        max_layers: optional int, for a plain ALBERT only: the ACT cap.
            Defaults to its `num_hidden_layers`.

    Returns:
        An `AlbertActBackbone`, or an `AlbertActPretrainer` when
        `pretraining_heads=True`.

    Example (skipped by the doctests: it needs a downloaded checkpoint of
    the authors, e.g. `asi/albert-act-base`):

    >>> import keras_act.convert
    >>> backbone = keras_act.convert.load_hf_checkpoint(
    ...     "path/to/albert-act-base")  # doctest: +SKIP
    >>> backbone.max_layers  # doctest: +SKIP
    24
    """
    config_path, weight_file = resolve_checkpoint(path)
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"No config.json next to {weight_file}.")
    hf_config = read_hf_config(config_path)
    plain = is_plain_albert(hf_config)
    if initial_depth is not None and not plain:
        raise CheckpointError(
            f"initial_depth={initial_depth!r} applies to plain ALBERT checkpoints; "
            f"{config_path} is an ALBERT-ACT checkpoint, whose halting unit is trained."
        )
    config = backbone_config_from_hf(hf_config, max_layers=max_layers)
    config["ponder_weight"], _ = ponder_weight_for(hf_config, config)
    backbone_weights, head_weights = split_state_dict(read_weights(weight_file))

    backbone = AlbertActBackbone(dtype=dtype, **config)
    weight_map = dict(BACKBONE_WEIGHT_MAP)
    if plain:
        backbone_weights = rename_plain_albert_keys(backbone_weights)
        for key in HALTING_KEYS:
            weight_map.pop(key)
        initialize_halting(backbone, initial_depth)
        _allow_new_weights(weight_map, backbone_weights, POOLER_KEYS, weight_file, "pooler")
    if transpose_pooler:
        weight_map["pooler.weight"] = ("pooled_dense/kernel", "copy")
    if not pretraining_heads:
        assign_weights(backbone, backbone_weights, weight_map, weight_file)
        return backbone

    head_weights, head_file = _find_heads(weight_file, head_weights)
    if not head_weights:
        raise CheckpointError(
            f"{path} has no pre-training heads (looked in {weight_file} and "
            f"{list(HEAD_FILES)} beside it)."
        )
    for tied, target in TIED_KEYS.items():
        if tied in head_weights:
            tied_value = head_weights.pop(tied)
            source = backbone_weights if target in backbone_weights else head_weights
            if target in source and not np.array_equal(tied_value, source[target]):
                raise CheckpointError(
                    f"{head_file}: {tied!r} differs from {target!r}, but ALBERT "
                    "ties them; an untied decoder is not supported."
                )
    head_map = dict(HEAD_WEIGHT_MAP)
    if plain:
        _allow_new_weights(head_map, head_weights, SOP_KEYS, head_file, "sentence-order head")
    pretrainer = AlbertActPretrainer(backbone)
    assign_weights(backbone, backbone_weights, weight_map, weight_file)
    assign_weights(pretrainer, head_weights, head_map, head_file)
    return pretrainer
