"""Keras layers of keras-act."""

from keras_act.layers.albert_act import AlbertAct
from keras_act.layers.albert_block import AlbertBlock
from keras_act.layers.input_checks import TokenInputCheck

__all__ = ["AlbertAct", "AlbertBlock", "TokenInputCheck"]
