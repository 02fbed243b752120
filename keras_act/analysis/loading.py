"""`load_depth_model`: a depth model from whatever is on disk."""

import json
import os

from keras_act.analysis.depth_models import KerasDepthModel, SavedModelDepthModel

SAVED_MODEL_FILE = "saved_model.pb"
# Names a SentencePiece model may have inside an authors' checkpoint folder.
SPIECE_FILES = ("spiece.model", "sentencepiece.model")


def load_depth_model(path, vocab=None):
    """Loads a model for depth analysis.

    Args:
        path: str, one of
            - a preset directory written by `save_to_preset` (a backbone with
              its tokenizer, or a task);
            - a `.keras` file (a backbone, `AlbertActPretrainer` or task);
            - an authors' checkpoint folder in the Hugging Face layout
              (`config.json` with `"model_type": "albert_act"`), or
              `hf://asi/albert-act-base`;
            - an exported SavedModel version folder
              (`saved_models/NAME/3`), or its base folder (the highest
              version is taken).
        vocab: optional tokenizer: a SentencePiece model file or a preset
            directory with a `tokenizer.json`. Needed when `path` carries no
            tokenizer (a checkpoint folder without `spiece.model`, a
            `.keras` backbone); ignored for a SavedModel, which has its own.

    Returns:
        A `KerasDepthModel` or a `SavedModelDepthModel`.

    Example:

    ```python
    depth_model = load_depth_model("runs/pretrain/preset")
    depth_model = load_depth_model("albert-act-base/", vocab="spiece.model")
    ```
    """
    path = os.fspath(path)
    version_dir = saved_model_version(path)
    if version_dir is not None:
        return SavedModelDepthModel(version_dir)
    if path.startswith("hf://") or _is_hf_checkpoint(path):
        from keras_act.convert import load_hf_checkpoint

        backbone = load_hf_checkpoint(path)
        return KerasDepthModel(backbone, _checkpoint_tokenizer(path, vocab))
    if not os.path.exists(path):
        raise FileNotFoundError(f"--model {path!r}: no such file or directory.")

    from keras_act.export.loading import load_for_export

    model, preprocessing = load_for_export(path, vocab=vocab)
    tokenizer = getattr(preprocessing, "tokenizer", preprocessing)
    return KerasDepthModel(_backbone_of(model, path), tokenizer)


def saved_model_version(path):
    """The SavedModel folder `path` names (a version or a base folder), or `None`."""
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


def _is_hf_checkpoint(path):
    config_path = os.path.join(path, "config.json") if os.path.isdir(path) else None
    if config_path is None or not os.path.isfile(config_path):
        return False
    with open(config_path, encoding="utf-8") as file:
        config = json.load(file)
    return "registered_name" not in config and config.get("model_type") == "albert_act"


def _checkpoint_tokenizer(path, vocab):
    from keras_act.export.loading import load_tokenizer

    if vocab is None and os.path.isdir(path):
        for name in SPIECE_FILES:
            if os.path.isfile(os.path.join(path, name)):
                vocab = os.path.join(path, name)
                break
    if vocab is None:
        raise ValueError(
            f"--model {path!r} is a checkpoint without a SentencePiece model: give "
            "the vocabulary with --vocab (albert-base-v2's spiece.model for the "
            "authors' checkpoints)."
        )
    return load_tokenizer(vocab)


def _backbone_of(model, path):
    from keras_act.models.albert_act_backbone import AlbertActBackbone

    if isinstance(model, AlbertActBackbone):
        return model
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, AlbertActBackbone):
        return backbone
    raise ValueError(
        f"--model {path!r} holds a {type(model).__name__}, which has no "
        "AlbertActBackbone to analyse."
    )
