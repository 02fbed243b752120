"""`load_depth_reader`: a depth reader from whatever is on disk."""

import os

from keras_act.analysis.depth_readers import KerasDepthReader, SavedModelDepthReader
from keras_act.model_loading import albert_act_backbone_of, load_model, saved_model_version


def load_depth_reader(path, vocab=None):
    """Loads a model for depth analysis (`keras_act.model_loading.load_model`).

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
        A `KerasDepthReader` or a `SavedModelDepthReader`.

    Example:

    ```python
    depth_reader = load_depth_reader("runs/pretrain/preset")
    depth_reader = load_depth_reader("albert-act-base/", vocab="spiece.model")
    ```
    """
    path = os.fspath(path)
    version_dir = saved_model_version(path)
    if version_dir is not None:
        return SavedModelDepthReader(version_dir)
    model, preprocessing = load_model(path, vocab=vocab, require_preprocessing=True)
    tokenizer = getattr(preprocessing, "tokenizer", preprocessing)
    return KerasDepthReader(albert_act_backbone_of(model, path), tokenizer)
