"""Import of ALBERT-ACT and plain ALBERT checkpoints (Hugging Face layout).

`load_hf_checkpoint(path)` returns an `AlbertActBackbone` (or, with
`pretraining_heads=True`, an `AlbertActPretrainer`) with the checkpoint's
numbers: the authors' `asi/albert-act-*`, or a plain ALBERT such as
`albert-base-v2` whose shared layer becomes the ACT block under a new halting
unit (`initial_depth`). `from_keras_hub_albert` does the same from a keras-hub
`AlbertBackbone`. `python -m keras_act.convert SRC OUT` saves the result.
`save_hf_checkpoint(model, folder)` (`--to-hf`) writes a backbone or
pretrainer back in the authors' layout (`config.json` + `model.safetensors`).
"""

# The `TYPE_CHECKING` imports below are read, not run: they name the public
# attributes (`__all__`), each imported from its module on first use
# (`keras_act.lazy_imports`), so importing the package imports none of them.
# ruff: noqa: F401

from typing import TYPE_CHECKING

from keras_act.lazy_imports import lazy_attributes

if TYPE_CHECKING:
    from keras_act.convert.checkpoint_files import read_weights
    from keras_act.convert.halting_initialization import (
        halting_bias_for_depth,
        initialize_halting,
    )
    from keras_act.convert.hf_checkpoint import (
        CheckpointError,
        HubUnreachableError,
        backbone_config_from_hf,
        load_hf_checkpoint,
        ponder_weight_for,
    )
    from keras_act.convert.hf_export import save_hf_checkpoint
    from keras_act.convert.keras_hub_albert import from_keras_hub_albert

__getattr__, __dir__, __all__ = lazy_attributes(__name__, __file__)
