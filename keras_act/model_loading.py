"""The one model loader: `.keras` files, presets, authors' checkpoints, SavedModels.

`load_model(path)` is what fine-tuning (`python -m training.finetune`),
export (`python -m keras_act.export`) and depth analysis
(`python -m keras_act.analysis`) read their `--model` with:

- a `.keras` file (a backbone, `AlbertActPretrainer` or task);
- a preset directory written by `save_to_preset` (a task with `task.json`,
  or a backbone with `config.json` and its `tokenizer.json` or
  `preprocessor.json`), or a pre-training run folder holding one in
  `preset/`;
- an authors' checkpoint in the Hugging Face layout (a folder whose
  `config.json` has no `registered_name`, one of its weight files, or
  `hf://asi/albert-act-base`), read by `keras_act.convert`; a
  `spiece.model` beside it is its tokenizer.

An exported SavedModel is not a Keras model: `saved_model_version(path)`
finds one, for depth analysis, which reads it as it is served.
Errors name the flag (`--model`, `--vocab`) and the path.
"""

import os
from typing import NamedTuple

import keras

from keras_act.json_files import read_json_file

# keras-hub's preset file names.
CONFIG_FILE = "config.json"
TASK_CONFIG_FILE = "task.json"
PREPROCESSOR_CONFIG_FILE = "preprocessor.json"
TOKENIZER_CONFIG_FILE = "tokenizer.json"
# A pre-training run folder keeps its preset here.
RUN_PRESET_DIR = "preset"
SAVED_MODEL_FILE = "saved_model.pb"
# Names a SentencePiece model may have inside an authors' checkpoint folder.
SPIECE_FILES = ("spiece.model", "sentencepiece.model")


class LoadedModel(NamedTuple):
    """What `load_model` read.

    Attributes:
        model: the Keras model (a backbone, `AlbertActPretrainer` or task).
        preprocessing: its preprocessor or tokenizer, or `None` when `path`
            carried none and no `vocab` was given.
    """

    model: object
    preprocessing: object


def load_model(path, vocab=None, dtype=None, require_preprocessing=False):
    """Loads a model and its preprocessor or tokenizer from disk.

    Args:
        path: str or path-like, a `.keras` file, a preset directory (or a
            pre-training run folder with one in `preset/`), an authors'
            checkpoint folder or weight file, or `hf://owner/name`.
        vocab: optional tokenizer, to use when `path` carries none or to
            replace it: a SentencePiece model file or a preset directory
            with a `tokenizer.json` (`load_tokenizer`).
        dtype: optional dtype policy of a model built from a preset or a
            checkpoint (a `.keras` file keeps its own).
        require_preprocessing: bool, raise a `ValueError` when neither
            `path` nor `vocab` gives a tokenizer or preprocessor.

    Returns:
        A `LoadedModel`, the tuple `(model, preprocessing)`.

    Raises:
        FileNotFoundError: when `path` or `vocab` does not exist.
        ValueError: for anything else that cannot be loaded, naming it.

    Example:

    >>> import tempfile, keras_act
    >>> backbone = keras_act.AlbertActBackbone(
    ...     vocabulary_size=10, num_layers=1, num_heads=1, hidden_dim=4,
    ...     intermediate_dim=8, embedding_dim=4, max_sequence_length=8, max_layers=2)
    >>> preset = tempfile.mkdtemp()
    >>> backbone.save_to_preset(preset)
    >>> model, preprocessing = load_model(preset)
    >>> type(model).__name__, preprocessing
    ('AlbertActBackbone', None)
    >>> load_model(preset, require_preprocessing=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: '...' holds a AlbertActBackbone without a tokenizer or preprocessor: ...
    """
    path = os.fspath(path)
    if saved_model_version(path) is not None:
        raise ValueError(
            f"--model {path!r} is an exported SavedModel, not a Keras model: give "
            "the .keras file or preset it was exported from."
        )
    model, preprocessing = _load(path, dtype)
    if vocab is not None:
        preprocessing = load_tokenizer(vocab)
    if require_preprocessing and preprocessing is None:
        raise ValueError(
            f"{path!r} holds a {type(model).__name__} without a tokenizer or "
            "preprocessor: give one with --vocab (a SentencePiece model file or "
            "a preset directory with tokenizer.json; albert-base-v2's "
            "spiece.model for the authors' checkpoints)."
        )
    return LoadedModel(model, preprocessing)


def load_tokenizer(path):
    """An `AlbertActTokenizer` from a SentencePiece file or a preset directory.

    Args:
        path: str or path-like, a SentencePiece model file (`spiece.model`)
            or a preset directory with a `tokenizer.json`.

    Returns:
        The tokenizer.

    Raises:
        FileNotFoundError: naming `--vocab` when `path` does not exist.
        ValueError: for a directory without `tokenizer.json`.

    Example:

    >>> import tempfile
    >>> load_tokenizer(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --vocab '...': the directory has no tokenizer.json.
    """
    from keras_act.tokenizers.albert_act_tokenizer import AlbertActTokenizer

    path = os.fspath(path)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, TOKENIZER_CONFIG_FILE)):
            raise ValueError(f"--vocab {path!r}: the directory has no {TOKENIZER_CONFIG_FILE}.")
        return _load_preset_object(path, TOKENIZER_CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--vocab {path!r}: no such file or directory.")
    return AlbertActTokenizer(proto=path)


def albert_act_backbone_of(model, path):
    """The `AlbertActBackbone` of `model` (itself, or its `backbone`).

    Args:
        model: a loaded model (`load_model`).
        path: the path it came from, for the error message.

    Returns:
        The `AlbertActBackbone`.

    Raises:
        ValueError: naming `path`, for a model of another architecture.

    Example:

    >>> import keras
    >>> albert_act_backbone_of(keras.Sequential(), "dense.keras")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --model 'dense.keras' holds a Sequential, a checkpoint of another architecture...
    """
    from keras_act.models.albert_act_backbone import AlbertActBackbone

    backbone = model if isinstance(model, AlbertActBackbone) else getattr(model, "backbone", None)
    if not isinstance(backbone, AlbertActBackbone):
        raise ValueError(
            f"--model {os.fspath(path)!r} holds a {type(model).__name__}, a checkpoint of "
            "another architecture, with no AlbertActBackbone; expected an "
            "AlbertActBackbone, an AlbertActPretrainer or an ALBERT-ACT task."
        )
    return backbone


def preset_dir(path):
    """The preset directory `path` names: itself, its `preset/`, or `None`.

    A preset has a `task.json`, or a `config.json` with a `registered_name`
    (an authors' checkpoint's `config.json` has none).

    Raises:
        ValueError: naming the file, for a `config.json` that is not a JSON
            object.

    Example:

    >>> import tempfile
    >>> preset_dir(tempfile.mkdtemp()) is None
    True
    """
    path = os.fspath(path)
    for candidate in (path, os.path.join(path, RUN_PRESET_DIR)):
        if os.path.isfile(os.path.join(candidate, TASK_CONFIG_FILE)):
            return candidate
        if os.path.isfile(os.path.join(candidate, CONFIG_FILE)):
            if "registered_name" in _read_json_object(candidate, CONFIG_FILE):
                return candidate
    return None


def saved_model_version(path):
    """The SavedModel folder `path` names (a version or a base folder), or `None`.

    Args:
        path: str or path-like, a SavedModel version folder
            (`saved_models/NAME/3`), or its base folder (`saved_models/NAME`,
            whose highest version is taken).

    Returns:
        The version folder, or `None` when `path` holds no SavedModel.

    Example:

    >>> import os, tempfile
    >>> base = tempfile.mkdtemp()
    >>> for version in ("1", "2"):
    ...     os.makedirs(os.path.join(base, version))
    ...     open(os.path.join(base, version, SAVED_MODEL_FILE), "wb").close()
    >>> os.path.basename(saved_model_version(base))
    '2'
    >>> saved_model_version(os.path.join(base, "missing")) is None
    True
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        return None
    if os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
        return path
    versions = [
        int(name)
        for name in os.listdir(path)
        if name.isdigit() and os.path.isfile(os.path.join(path, name, SAVED_MODEL_FILE))
    ]
    return os.path.join(path, str(max(versions))) if versions else None


def _load(path, dtype):
    """`(model, preprocessing or None)` of `path`, whatever its format."""
    if path.startswith("hf://"):
        return _load_checkpoint(path, dtype)
    if os.path.isfile(path):
        if _is_checkpoint_weight_file(path):
            return _load_checkpoint(path, dtype)
        if not path.endswith(".keras"):
            raise ValueError(
                f"--model {path!r}: expected a `.keras` file or a preset directory "
                "(or an authors' checkpoint folder)."
            )
        return _load_keras_file(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"--model {path!r}: no such file or directory.")
    preset = preset_dir(path)
    if preset is not None:
        return _load_preset(preset, dtype)
    if os.path.isfile(os.path.join(path, CONFIG_FILE)):
        return _load_checkpoint(path, dtype)
    raise ValueError(
        f"--model {path!r}: a preset directory needs a {CONFIG_FILE} "
        f"(backbone) or {TASK_CONFIG_FILE} (task), as written by `save_to_preset`; "
        f"an authors' checkpoint folder needs a {CONFIG_FILE} and its weights."
    )


def _load_keras_file(path):
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - any unreadable file, named
        raise ValueError(
            f"--model {path!r}: cannot load the .keras file: {type(error).__name__}: {error}"
        ) from error
    return model, getattr(model, "preprocessor", None)


def _load_preset(path, dtype):
    dtype_kwargs = {} if dtype is None else {"dtype": dtype}
    if os.path.isfile(os.path.join(path, TASK_CONFIG_FILE)):
        task_cls = _registered_class(path, TASK_CONFIG_FILE)
        model = task_cls.from_preset(path, **dtype_kwargs)
        return model, getattr(model, "preprocessor", None)
    backbone_cls = _registered_class(path, CONFIG_FILE)
    model = backbone_cls.from_preset(path, **dtype_kwargs)
    for config_file in (PREPROCESSOR_CONFIG_FILE, TOKENIZER_CONFIG_FILE):
        if os.path.isfile(os.path.join(path, config_file)):
            return model, _load_preset_object(path, config_file)
    return model, None


def _load_checkpoint(path, dtype):
    """An authors' checkpoint, with the `spiece.model` beside it if any."""
    from keras_act.convert import CheckpointError, load_hf_checkpoint

    try:
        backbone = load_hf_checkpoint(path, dtype=dtype)
    except CheckpointError as error:
        raise CheckpointError(f"--model {path!r}: {error}") from error
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    for name in SPIECE_FILES if folder and not path.startswith("hf://") else ():
        if os.path.isfile(os.path.join(folder, name)):
            return backbone, load_tokenizer(os.path.join(folder, name))
    return backbone, None


def _is_checkpoint_weight_file(path):
    from keras_act.convert.hf_checkpoint import BACKBONE_FILES

    return os.path.basename(path) in BACKBONE_FILES


def _registered_class(path, config_file):
    name = _read_json_object(path, config_file).get("registered_name")
    cls = keras.saving.get_registered_object(name) if name else None
    if cls is None:
        raise ValueError(
            f"{os.path.join(path, config_file)}: unknown class {name!r}; import the "
            "module that registers it before loading."
        )
    return cls


def _load_preset_object(path, config_file):
    """Deserializes a preset's tokenizer or preprocessor and loads its assets."""
    layer = keras.saving.deserialize_keras_object(_read_json_object(path, config_file))
    if hasattr(layer, "load_preset_assets"):
        layer.load_preset_assets(path)
    return layer


def _read_json_object(path, config_file):
    """A preset's JSON file, which must hold an object; errors name it."""
    file_path = os.path.join(path, config_file)
    config = read_json_file(file_path)
    if not isinstance(config, dict):
        raise ValueError(
            f"{file_path}: expected a JSON object, found a {type(config).__name__}."
        )
    return config
