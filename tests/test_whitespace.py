"""`split_words` splits as Python's `str.split()`, with byte offsets."""

import random

import tensorflow as tf

from keras_act.tokenizers.whitespace import split_words

WHITESPACE = [chr(i) for i in range(0x3001) if chr(i).isspace()]
NOT_WHITESPACE = ["\u200b", "\ufeff", "\u180e", "\u00ad"]


def assert_splits_like_str_split(texts):
    """`split_words` gives the words of `str.split()` and their byte offsets."""
    words, starts, ends = split_words(tf.constant(texts))
    for text, row, row_starts, row_ends in zip(
        texts, words.to_list(), starts.to_list(), ends.to_list(), strict=True
    ):
        assert [w.decode("utf-8") for w in row] == text.split(), repr(text)
        encoded = text.encode("utf-8")
        assert [encoded[s:e] for s, e in zip(row_starts, row_ends, strict=True)] == row


def test_every_whitespace_character_splits_like_str_split():
    texts = [f"ab{c}cd{c}" for c in WHITESPACE + NOT_WHITESPACE]
    assert_splits_like_str_split(texts)


def test_random_texts_split_like_str_split():
    rng = random.Random(0)
    alphabet = WHITESPACE + NOT_WHITESPACE + list("abcé東🙂") + ["[SEP]"]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(300)]
    assert_splits_like_str_split(texts)
