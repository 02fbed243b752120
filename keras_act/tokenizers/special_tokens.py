"""ALBERT's special tokens (TensorFlow-free).

`AlbertActTokenizer` splits these out of the text before SentencePiece, and
an ALBERT-compatible SentencePiece model (`python -m training.vocab`) must
hold each of them as a piece.
"""

#: The special tokens of Hugging Face's `AlbertTokenizer` (`all_special_tokens`),
#: split out of the raw text before any normalisation and mapped to their ids.
SPECIAL_TOKENS = ("[CLS]", "[SEP]", "<unk>", "<pad>", "[MASK]")
