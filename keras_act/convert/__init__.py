"""Import of the authors' ALBERT-ACT checkpoints (Hugging Face layout).

`load_hf_checkpoint(path)` returns an `AlbertActBackbone` (or, with
`pretraining_heads=True`, an `AlbertActPretrainer`) with the checkpoint's
numbers; `python -m keras_act.convert SRC OUT` saves it.
"""

# The `TYPE_CHECKING` imports below are read, not run: they name the public
# attributes (`__all__`), each imported from its module on first use
# (`keras_act.lazy_imports`), so importing the package imports none of them.
# ruff: noqa: F401

from typing import TYPE_CHECKING

from keras_act.lazy_imports import lazy_attributes

if TYPE_CHECKING:
    from keras_act.convert.checkpoint_files import read_weights
    from keras_act.convert.hf_checkpoint import (
        CheckpointError,
        HubUnreachableError,
        backbone_config_from_hf,
        load_hf_checkpoint,
        ponder_weight_for,
    )

__getattr__, __dir__, __all__ = lazy_attributes(__name__, __file__)
