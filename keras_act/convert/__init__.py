"""Import of the authors' ALBERT-ACT checkpoints (Hugging Face layout).

`load_hf_checkpoint(path)` returns an `AlbertActBackbone` (or, with
`pretraining_heads=True`, an `AlbertActPretrainer`) with the checkpoint's
numbers; `python -m keras_act.convert SRC OUT` saves it.
"""

from keras_act.convert.checkpoint_files import read_weights
from keras_act.convert.hf_checkpoint import (
    CheckpointError,
    HubUnreachableError,
    backbone_config_from_hf,
    load_hf_checkpoint,
    ponder_weight_for,
)

__all__ = [
    "CheckpointError",
    "HubUnreachableError",
    "backbone_config_from_hf",
    "load_hf_checkpoint",
    "ponder_weight_for",
    "read_weights",
]
