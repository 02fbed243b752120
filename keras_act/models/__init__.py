"""Keras models (backbones and tasks) of keras-act."""

from keras_act.models.albert_act_backbone import AlbertActBackbone
from keras_act.models.albert_act_pretrainer import AlbertActPretrainer

__all__ = ["AlbertActBackbone", "AlbertActPretrainer"]
