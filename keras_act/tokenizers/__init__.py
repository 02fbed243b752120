"""Tokenizers and preprocessors of keras-act (in-graph ALBERT SentencePiece)."""

# The `TYPE_CHECKING` imports below are read, not run: they name the public
# attributes (`__all__`), each imported from its module on first use
# (`keras_act.lazy_imports`), so importing the package imports none of them.
# ruff: noqa: F401

from typing import TYPE_CHECKING

from keras_act.lazy_imports import lazy_attributes

if TYPE_CHECKING:
    from keras_act.tokenizers.albert_act_preprocessor import (
        AlbertActPairPreprocessor,
        AlbertActPreprocessor,
    )
    from keras_act.tokenizers.albert_act_tokenizer import AlbertActTokenizer

__getattr__, __dir__, __all__ = lazy_attributes(__name__, __file__)
