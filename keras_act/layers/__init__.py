"""Keras layers of keras-act."""
