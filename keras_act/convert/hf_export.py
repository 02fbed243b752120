"""Export to the authors' format: `config.json` + `model.safetensors` (Hugging Face layout).

The inverse of `load_hf_checkpoint`: the state-dict keys, shapes and layout
(Linear weights `[out, in]`) of the authors' PyTorch `AlbertActModel`, or of
`AlbertActForPreTraining` for a pretrainer (backbone keys under `albert.`,
the MLM and SOP heads, and the tied decoder stored as separate equal copies,
as `save_pretrained` writes them), and a `config.json` with every field of
their `AlbertActConfig`. A model trained with keras-act can so be published
next to `asi/albert-act-*` and read by their code (`from_pretrained`).
"""

import json
import os

import numpy as np

from keras_act.atomic_files import write_folder_atomically
from keras_act.convert.hf_checkpoint import BACKBONE_WEIGHT_MAP, HEAD_WEIGHT_MAP, TIED_KEYS

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
# Fixed fields of the authors' config.json (ALBERT's vocabulary and init).
_CONSTANT_CONFIG = {
    "bos_token_id": 2,
    "classifier_dropout_prob": 0.1,
    "eos_token_id": 3,
    "initializer_range": 0.02,
    "inner_group_num": 1,
    "model_type": "albert_act",
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "torch_dtype": "float32",
}


def _split_model(model):
    """`(backbone, pretrainer or None)` of an `AlbertActBackbone` or `AlbertActPretrainer`."""
    from keras_act.models.albert_act_backbone import AlbertActBackbone
    from keras_act.models.albert_act_pretrainer import AlbertActPretrainer

    if isinstance(model, AlbertActPretrainer):
        return model.backbone, model
    if isinstance(model, AlbertActBackbone):
        return model, None
    raise TypeError(
        "save_hf_checkpoint writes an AlbertActBackbone or an AlbertActPretrainer; "
        f"received a {type(model).__name__} (for a task, pass its `.backbone`)."
    )


def hf_config_of(backbone, architecture="AlbertActModel"):
    """The authors' `config.json` fields of a backbone.

    Args:
        backbone: an `AlbertActBackbone`.
        architecture: str, the `architectures` entry (`"AlbertActModel"` or
            `"AlbertActForPreTraining"`).

    Returns:
        A dict: every field of the authors' `AlbertActConfig`, plus
        `ponder_weight` (tau, which their config ignores and
        `load_hf_checkpoint` reads back).

    Raises:
        ValueError: for an activation that is not a name (a function
            cannot be written to `hidden_act`).
    """
    if not isinstance(backbone.activation, str):
        raise ValueError(
            f"The backbone's activation {backbone.activation!r} is not a name; the "
            "authors' config.json needs one in `hidden_act` (such as 'gelu_new')."
        )
    return dict(
        sorted(
            {
                **_CONSTANT_CONFIG,
                "act_epsilon": float(backbone.act_epsilon),
                "architectures": [architecture],
                "attention_probs_dropout_prob": float(backbone.dropout),
                "embedding_size": int(backbone.embedding_dim),
                "hidden_act": backbone.activation,
                "hidden_dropout_prob": float(backbone.dropout),
                "hidden_size": int(backbone.hidden_dim),
                "intermediate_size": int(backbone.intermediate_dim),
                "layer_norm_eps": float(backbone.layer_norm_epsilon),
                "max_position_embeddings": int(backbone.max_sequence_length),
                "num_attention_heads": int(backbone.num_heads),
                "num_hidden_layers": int(backbone.max_layers),
                "ponder_weight": float(backbone.ponder_weight),
                "type_vocab_size": int(backbone.num_segments),
                "vocab_size": int(backbone.vocabulary_size),
            }.items()
        )
    )


def _to_checkpoint_layout(array, kind):
    """A Keras variable's value in the PyTorch layout (inverse of `assign_weights`)."""
    if kind == "linear":  # kernel [in, *out] -> weight [prod(out), in]
        return array.reshape(array.shape[0], -1).T
    if kind == "linear_out":  # kernel [*in, out] -> weight [out, prod(in)]
        return array.reshape(-1, array.shape[-1]).T
    if kind == "reshape":
        return array.reshape(-1)
    return array


def _state_dict(model, weight_map, prefix=""):
    variables = {variable.path: variable for variable in model.weights}
    state = {}
    for key, (path, kind) in weight_map.items():
        if path not in variables:
            raise ValueError(f"The model has no weight {path!r} (for {key!r}).")
        array = np.asarray(variables[path].numpy(), dtype=np.float32)
        state[prefix + key] = np.ascontiguousarray(_to_checkpoint_layout(array, kind))
    return state


def hf_state_dict(model):
    """The authors' PyTorch state dict of a backbone or pretrainer, as numpy arrays.

    Args:
        model: an `AlbertActBackbone` (keys of `AlbertActModel`) or an
            `AlbertActPretrainer` (keys of `AlbertActForPreTraining`).

    Returns:
        A dict `{key: float32 array}` (and the int64 `position_ids` buffer).
    """
    backbone, pretrainer = _split_model(model)
    prefix = "albert." if pretrainer is not None else ""
    state = _state_dict(backbone, BACKBONE_WEIGHT_MAP, prefix)
    state[prefix + "embeddings.position_ids"] = np.arange(
        backbone.max_sequence_length, dtype=np.int64
    )[None]
    if pretrainer is not None:
        state.update(_state_dict(pretrainer, HEAD_WEIGHT_MAP))
        for tied, target in TIED_KEYS.items():
            source = state.get(target, state.get(prefix + target))
            state[tied] = source.copy()
    return state


def save_hf_checkpoint(model, folder):
    """Writes a model in the authors' format: `config.json` + `model.safetensors`.

    The folder is what `AlbertActModel.save_pretrained` (for a backbone) or
    `AlbertActForPreTraining.save_pretrained` (for a pretrainer) writes in
    the authors' code: their key names, shapes and `[out, in]` Linear
    layout, safetensors metadata `{"format": "pt"}`, and a `config.json`
    with every field of their `AlbertActConfig` (and `ponder_weight`).
    `load_hf_checkpoint(folder)` reads it back (with
    `pretraining_heads=True` for a pretrainer) and gives the same outputs.

    The folder is written whole beside its final place and then moved there
    (`keras_act.atomic_files.write_folder_atomically`), so a killed export
    leaves the old folder as it was; an existing checkpoint folder is
    replaced whole. A folder that is not empty and holds no `config.json`
    is refused rather than replaced.

    Args:
        model: an `AlbertActBackbone` or an `AlbertActPretrainer` (for a
            task model, pass its `.backbone`).
        folder: str or path-like, the checkpoint folder to write.

    Returns:
        The folder's path.

    Raises:
        TypeError: for another kind of model.
        FileExistsError: for a folder that is a file, or a non-empty folder
            that holds no checkpoint.

    Example:

    >>> import os, tempfile, keras_act
    >>> backbone = keras_act.AlbertActBackbone(
    ...     vocabulary_size=50, embedding_dim=8, hidden_dim=16, num_heads=2,
    ...     intermediate_dim=32, max_layers=4, max_sequence_length=16)
    >>> folder = save_hf_checkpoint(backbone, os.path.join(tempfile.mkdtemp(), "ckpt"))
    >>> sorted(os.listdir(folder))
    ['config.json', 'model.safetensors']
    >>> keras_act.convert.load_hf_checkpoint(folder).max_layers
    4
    """
    from safetensors.numpy import save_file

    backbone, pretrainer = _split_model(model)
    folder = os.path.abspath(os.fspath(folder))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise FileExistsError(f"{folder} is a file; a checkpoint is written to a folder.")
    if os.path.isdir(folder) and os.listdir(folder) and not os.path.isfile(
        os.path.join(folder, CONFIG_FILE)
    ):
        raise FileExistsError(
            f"{folder} is a folder that holds no checkpoint (no {CONFIG_FILE}); "
            "refusing to replace it: pass a new or empty folder."
        )
    architecture = "AlbertActForPreTraining" if pretrainer is not None else "AlbertActModel"
    config = hf_config_of(backbone, architecture)
    state = hf_state_dict(model)

    def write(staging):
        save_file(state, os.path.join(staging, WEIGHTS_FILE), metadata={"format": "pt"})
        with open(os.path.join(staging, CONFIG_FILE), "w", encoding="utf8") as file:
            json.dump(config, file, indent=2)
            file.write("\n")

    os.makedirs(os.path.dirname(folder), exist_ok=True)
    return write_folder_atomically(folder, write)
