"""Keras models (backbones and tasks) of keras-act."""
