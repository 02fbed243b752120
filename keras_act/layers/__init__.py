"""Keras layers of keras-act."""

from keras_act.layers.albert_act import AlbertAct
from keras_act.layers.albert_block import AlbertBlock
from keras_act.layers.input_checks import TokenInputCheck
from keras_act.layers.ponder_cost import PonderCost, ponder_cost

__all__ = ["AlbertAct", "AlbertBlock", "PonderCost", "TokenInputCheck", "ponder_cost"]
