"""Loading a saved model and its preprocessing for `python -m keras_act.export`."""

import json
import os

import keras

from keras_act.tokenizers.albert_act_tokenizer import AlbertActTokenizer

# keras-hub's preset file names.
CONFIG_FILE = "config.json"
TASK_CONFIG_FILE = "task.json"
PREPROCESSOR_CONFIG_FILE = "preprocessor.json"
TOKENIZER_CONFIG_FILE = "tokenizer.json"


def load_for_export(path, vocab=None):
    """Loads a model and its preprocessor or tokenizer from disk.

    Args:
        path: a `.keras` file (a task model carrying its preprocessor, or a
            model such as `AlbertActPretrainer` with `vocab`), or a preset
            directory written by `save_to_preset`: a task (`task.json`), or a
            backbone (`config.json`) with its tokenizer (`tokenizer.json`) or
            preprocessor (`preprocessor.json`).
        vocab: optional path of the tokenizer, when `path` carries none or
            to replace it: a SentencePiece model file (`spiece.model`) or a
            preset directory with a `tokenizer.json`.

    Returns:
        A tuple `(model, preprocessor_or_tokenizer)` for `export_saved_model`.

    Example:

    ```python
    model, tokenizer = load_for_export("runs/demo/pretrainer.keras", vocab="runs/demo/preset")
    ```
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        if not path.endswith(".keras"):
            raise ValueError(f"--model {path!r}: expected a `.keras` file or a preset directory.")
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as error:  # noqa: BLE001 - any unreadable file, named
            raise ValueError(
                f"--model {path!r}: cannot load the .keras file: "
                f"{type(error).__name__}: {error}"
            ) from error
        preprocessing = getattr(model, "preprocessor", None)
    elif os.path.isdir(path):
        model, preprocessing = _load_preset(path)
    else:
        raise FileNotFoundError(f"--model {path!r}: no such file or directory.")
    if vocab is not None:
        preprocessing = load_tokenizer(vocab)
    if preprocessing is None:
        raise ValueError(
            f"{path!r} holds a {type(model).__name__} without a tokenizer or "
            "preprocessor: give one with --vocab (a SentencePiece model file or "
            "a preset directory with tokenizer.json)."
        )
    return model, preprocessing


def load_tokenizer(path):
    """An `AlbertActTokenizer` from a SentencePiece file or a preset directory."""
    path = os.fspath(path)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, TOKENIZER_CONFIG_FILE)):
            raise ValueError(f"--vocab {path!r}: the directory has no {TOKENIZER_CONFIG_FILE}.")
        return _load_preset_object(path, TOKENIZER_CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--vocab {path!r}: no such file or directory.")
    return AlbertActTokenizer(proto=path)


def _load_preset(path):
    if os.path.isfile(os.path.join(path, TASK_CONFIG_FILE)):
        task_cls = _registered_class(path, TASK_CONFIG_FILE)
        model = task_cls.from_preset(path)
        return model, getattr(model, "preprocessor", None)
    if not os.path.isfile(os.path.join(path, CONFIG_FILE)):
        raise ValueError(
            f"--model {path!r}: a preset directory needs a {CONFIG_FILE} "
            f"(backbone) or {TASK_CONFIG_FILE} (task), as written by `save_to_preset`."
        )
    backbone_cls = _registered_class(path, CONFIG_FILE)
    model = backbone_cls.from_preset(path)
    for config_file in (PREPROCESSOR_CONFIG_FILE, TOKENIZER_CONFIG_FILE):
        if os.path.isfile(os.path.join(path, config_file)):
            return model, _load_preset_object(path, config_file)
    return model, None


def _registered_class(path, config_file):
    config = _read_json(path, config_file)
    name = config.get("registered_name")
    cls = keras.saving.get_registered_object(name) if name else None
    if cls is None:
        raise ValueError(
            f"{os.path.join(path, config_file)}: unknown class {name!r}; import the "
            "module that registers it before exporting."
        )
    return cls


def _load_preset_object(path, config_file):
    """Deserializes a preset's tokenizer or preprocessor and loads its assets."""
    layer = keras.saving.deserialize_keras_object(_read_json(path, config_file))
    if hasattr(layer, "load_preset_assets"):
        layer.load_preset_assets(path)
    return layer


def _read_json(path, config_file):
    """A preset's JSON file; an unreadable one is a `ValueError` naming it."""
    file_path = os.path.join(path, config_file)
    try:
        with open(file_path, encoding="utf-8") as file:
            config = json.load(file)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{file_path}: not a JSON file: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(
            f"{file_path}: expected a JSON object, found a {type(config).__name__}."
        )
    return config
