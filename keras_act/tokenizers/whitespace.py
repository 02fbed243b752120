"""Splitting text into whitespace-separated words in the graph, as Python's
`str.split()` does, with byte offsets into the original text.

`tensorflow_text.WhitespaceTokenizer` alone gets two things wrong: a word
followed by a multi-byte space (U+00A0, U+2009, U+3000, ...) keeps the
leading bytes of that space (an invalid UTF-8 word, and offsets that cut a
character), and the separators U+001C-U+001F do not split. Every whitespace
character is therefore first replaced by as many ASCII spaces as it has bytes,
which keeps every offset valid for the original text.
"""

import tensorflow as tf
import tensorflow_text as tf_text

# Python's whitespace (`str.isspace`) the tokenizer mishandles, by UTF-8 length.
_ONE_BYTE = r"[\x1c-\x1f]"
_TWO_BYTES = r"[\x{85}\x{a0}]"
_THREE_BYTES = r"[\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"


def split_words(texts):
    """Splits strings on whitespace, exactly as Python's `str.split()`.

    Args:
        texts: a string tensor `[batch]`.

    Returns:
        A tuple `(words, starts, ends)` of ragged `[batch, None]` tensors:
        the words (bytes of the original text) and each word's start and end
        byte offsets in it.

    Example:

    >>> words, starts, ends = split_words(tf.constant(["a\u3000b"]))
    >>> words.to_list(), starts.to_list(), ends.to_list()
    ([[b'a', b'b']], [[0, 4]], [[1, 5]])
    """
    spaced = tf.strings.regex_replace(texts, _ONE_BYTE, " ")
    spaced = tf.strings.regex_replace(spaced, _TWO_BYTES, "  ")
    spaced = tf.strings.regex_replace(spaced, _THREE_BYTES, "   ")
    return tf_text.WhitespaceTokenizer().tokenize_with_offsets(spaced)
