"""Keras layers of keras-act."""

# The `TYPE_CHECKING` imports below are read, not run: they name the public
# attributes (`__all__`), each imported from its module on first use
# (`keras_act.lazy_imports`), so importing the package imports none of them.
# ruff: noqa: F401

from typing import TYPE_CHECKING

from keras_act.lazy_imports import lazy_attributes

if TYPE_CHECKING:
    from keras_act.layers.albert_act import AlbertAct
    from keras_act.layers.albert_block import AlbertBlock
    from keras_act.layers.depth_control import depth_budget
    from keras_act.layers.input_checks import TokenInputCheck
    from keras_act.layers.ponder import PonderCost, ponder_cost

__getattr__, __dir__, __all__ = lazy_attributes(__name__, __file__)
