"""Tokenizers and preprocessors of keras-act (in-graph ALBERT SentencePiece)."""

from keras_act.tokenizers.albert_act_preprocessor import (
    AlbertActPairPreprocessor,
    AlbertActPreprocessor,
)
from keras_act.tokenizers.albert_act_tokenizer import AlbertActTokenizer

__all__ = ["AlbertActPairPreprocessor", "AlbertActPreprocessor", "AlbertActTokenizer"]
