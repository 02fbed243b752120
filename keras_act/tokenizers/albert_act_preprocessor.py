"""ALBERT-ACT preprocessors: raw text to `token_ids`, `segment_ids`, `padding_mask`."""

import keras
import tensorflow as tf
import tensorflow_text as tf_text
from keras_hub.models import Preprocessor

from keras_act.checks import check_positive_int
from keras_act.models.albert_act_backbone import AlbertActBackbone
from keras_act.tokenizers.albert_act_tokenizer import AlbertActTokenizer
from keras_act.tokenizers.preprocessing_outputs import preprocessing_outputs


def check_tokenizer(layer, tokenizer):
    """Raise a `ValueError` naming `layer` unless `tokenizer` is an `AlbertActTokenizer`."""
    if not isinstance(tokenizer, AlbertActTokenizer):
        raise ValueError(
            f"{type(layer).__name__} needs an `AlbertActTokenizer`. "
            f"Received: tokenizer={tokenizer!r}"
        )


def check_sequence_length(layer, sequence_length, minimum):
    """Raise a `ValueError` unless `sequence_length` is an int >= `minimum`."""
    check_positive_int("sequence_length", sequence_length)
    if sequence_length < minimum:
        raise ValueError(
            f"`sequence_length` must be at least {minimum} for {type(layer).__name__}. "
            f"Received: sequence_length={sequence_length}"
        )


def round_robin_lengths(lengths, room):
    """How many tokens of each segment round-robin trimming keeps, in-graph.

    Tokens are handed out one at a time to the segments in turn, skipping
    those that have none left, until `room` are given: the segments are
    cut to a common cap (the shorter ones kept whole) and the tokens left
    over go to the first segments that still have more. For two segments
    this is Hugging Face's `longest_first` truncation (the longer text
    loses tokens from its end until both have the same length, then both;
    the first keeps `ceil(room / 2)` when both are cut) and tensorflow-text's
    `RoundRobinTrimmer`, with plain TensorFlow ops (`RoundRobinTrimmer`'s
    op arrived in TF Text 2.16, which model servers built with an older one
    lack).

    Args:
        lengths: int `[batch, num_segments]`, the segments' token counts.
        room: int, the tokens to keep in all (`>= 0`).

    Returns:
        int `[batch, num_segments]`, the tokens to keep of each segment.

    Example:

    >>> round_robin_lengths(tf.constant([[9, 9], [9, 2], [2, 9], [3, 2]]), 6).numpy().tolist()
    [[3, 3], [4, 2], [2, 4], [3, 2]]
    """
    lengths = tf.convert_to_tensor(lengths)
    room = tf.cast(room, lengths.dtype)
    count = tf.shape(lengths, out_type=lengths.dtype)[1]
    shortest = tf.sort(lengths, axis=1)
    whole = tf.cumsum(shortest, axis=1, exclusive=True)  # tokens of the k shortest
    # With the k shortest kept whole, the others share what is left evenly.
    caps = (room - whole) // (count - tf.range(count, dtype=lengths.dtype))
    cut = caps < shortest  # the k-th shortest does not fit whole under the cap
    first_cut = tf.argmax(tf.cast(cut, tf.int32), axis=1, output_type=tf.int32)
    cap = tf.where(
        tf.reduce_any(cut, axis=1),
        tf.gather(caps, first_cut, batch_dims=1),
        tf.reduce_max(lengths, axis=1),
    )[:, tf.newaxis]
    longer = lengths > cap
    left_over = room - tf.reduce_sum(tf.minimum(lengths, cap), axis=1, keepdims=True)
    turn = tf.cumsum(tf.cast(longer, lengths.dtype), axis=1, exclusive=True)
    extra = tf.logical_and(longer, turn < left_over)
    return tf.minimum(lengths, cap) + tf.cast(extra, lengths.dtype)


def trim_segments(segments, room):
    """Round-robin trims ragged `[batch, None]` segments to `room` tokens in all.

    Args:
        segments: a tuple of ragged `[batch, None]` tensors.
        room: int, the tokens to keep in all.

    Returns:
        A list of the segments, each cut to its `round_robin_lengths`.
    """
    if len(segments) == 1:
        return [segments[0][:, :room]]
    lengths = tf.stack([s.row_lengths() for s in segments], axis=1)
    keep = round_robin_lengths(lengths, room)
    trimmed = []
    for i, segment in enumerate(segments):
        starts = segment.row_starts()
        kept = tf.ragged.range(starts, starts + keep[:, i], row_splits_dtype=starts.dtype)
        trimmed.append(
            tf.RaggedTensor.from_row_splits(
                tf.gather(segment.flat_values, kept.flat_values), kept.row_splits, validate=False
            )
        )
    return trimmed


def pack_segments(segments, sequence_length, tokenizer):
    """`[CLS] a [SEP] (b [SEP] ...)`, trimmed round-robin and padded, in-graph.

    Round-robin trimming of two segments keeps `(ceil(n / 2), floor(n / 2))`
    tokens when both are too long and leaves a short one whole: Hugging
    Face's "longest_first" (and keras-hub's `MultiSegmentPacker`); see
    `round_robin_lengths`. Plain TensorFlow ops only (no TF Text op), so
    the exported graph loads in model servers built with TF Text 2.12.

    Args:
        segments: a tuple of int ragged `[batch, None]` token ids.
        sequence_length: int, the packed length.
        tokenizer: the `AlbertActTokenizer` (its `[CLS]`, `[SEP]`, `<pad>`).

    Returns:
        A dict of int32 `token_ids`, `segment_ids` (segment `i` and its
        closing `[SEP]` get `i`, padding 0) and `padding_mask` (1 on tokens,
        0 on padding, even where the text itself holds `<pad>`), each
        `[batch, sequence_length]`.
    """
    room = sequence_length - 1 - len(segments)
    segments = [tf.cast(s, tf.int32) for s in trim_segments(segments, room)]
    token_ids, segment_ids = tf_text.combine_segments(
        segments, tokenizer.cls_token_id, tokenizer.sep_token_id
    )
    shape = [None, sequence_length]
    return {
        "token_ids": token_ids.to_tensor(default_value=tokenizer.pad_token_id, shape=shape),
        "segment_ids": tf.cast(segment_ids, tf.int32).to_tensor(default_value=0, shape=shape),
        "padding_mask": tf.ones_like(token_ids).to_tensor(default_value=0, shape=shape),
    }


@keras.saving.register_keras_serializable(package="keras_act")
class AlbertActPreprocessor(Preprocessor):
    """Single-sentence ALBERT-ACT preprocessor: `[CLS] text [SEP]`, padded.

    Tokenizes raw text with an `AlbertActTokenizer`, truncates it to
    `sequence_length - 2` tokens, adds `[CLS]` and `[SEP]` and pads with
    `<pad>`: the ids of Hugging Face's `AlbertTokenizer(text,
    truncation=True, max_length=sequence_length, padding="max_length")`.
    TensorFlow ops only, in eager mode, in `tf.data` and in a SavedModel.

    The layer takes `x` (a string, a batch of strings or a string tensor)
    and optional `y` and `sample_weight`, passed through (a 2- or 3-tuple is
    unpacked as `(x, y[, sample_weight])`, as `tf.data` elements are).

    Args:
        tokenizer: an `AlbertActTokenizer`.
        sequence_length: int, the length of the packed sequences (at least
            3). Defaults to 512.
        **kwargs: arguments of `keras.layers.Layer` (e.g. `name`).

    Returns:
        `x` as a dict of int32 `token_ids`, `segment_ids` (all 0) and
        `padding_mask` (1 on `[CLS]`, text and `[SEP]`), each
        `[batch, sequence_length]` (`[sequence_length]` for one string),
        followed by `y` and `sample_weight` when given.

    Example:

    >>> import io, keras_act, sentencepiece as spm; proto = io.BytesIO()
    >>> spm.SentencePieceTrainer.train(sentence_iterator=iter(["the fox ran far away.", "a cat sat on a mat."] * 20), model_writer=proto, vocab_size=24, pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, control_symbols=["[CLS]", "[SEP]", "[MASK]"], minloglevel=2)
    >>> tokenizer = keras_act.AlbertActTokenizer(proto=proto.getvalue())
    >>> preprocessor = keras_act.AlbertActPreprocessor(tokenizer, sequence_length=8)
    >>> preprocessor("The fox ran far.")["token_ids"].numpy().tolist()
    [2, 5, 14, 20, 18, 13, 11, 3]
    >>> import tensorflow as tf
    >>> ds = tf.data.Dataset.from_tensor_slices((["a cat", "the fox"], [0, 1])).batch(2)
    >>> x, y = ds.map(preprocessor).get_single_element()
    >>> x["padding_mask"].numpy().tolist(), y.numpy().tolist()
    ([[1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]], [0, 1])
    """

    backbone_cls = AlbertActBackbone
    tokenizer_cls = AlbertActTokenizer
    num_segments = 1

    def __init__(self, tokenizer, sequence_length=512, **kwargs):
        super().__init__(**kwargs)
        check_tokenizer(self, tokenizer)
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.built = True

    @property
    def sequence_length(self):
        """The packed length (at least 3: `[CLS]`, one token, `[SEP]`); it
        may be set after construction, and `get_config` reports it."""
        return self._sequence_length

    @sequence_length.setter
    def sequence_length(self, value):
        check_sequence_length(self, value, 3)
        self._sequence_length = value

    @preprocessing_outputs
    def call(self, x, y=None, sample_weight=None):
        segments = self._segments(x)
        with tf.device("cpu"):
            ids = [self.tokenizer(segment) for segment in segments]
            single = ids[0].shape.rank == 1
            if single:
                ids = [tf.RaggedTensor.from_tensor(i[tf.newaxis]) for i in ids]
            x = pack_segments(tuple(ids), self.sequence_length, self.tokenizer)
            if single:
                x = {key: value[0] for key, value in x.items()}
        return keras.utils.pack_x_y_sample_weight(x, _to_tensor(y), _to_tensor(sample_weight))

    def _segments(self, x):
        if isinstance(x, tuple):
            if len(x) != 1:
                raise ValueError(
                    "AlbertActPreprocessor takes one text segment; use "
                    "`AlbertActPairPreprocessor` for sentence pairs. "
                    f"Received a tuple of {len(x)} segments."
                )
            return x
        return (x,)

    def get_config(self):
        config = super().get_config()
        config.update({"sequence_length": self.sequence_length})
        return config


@keras.saving.register_keras_serializable(package="keras_act")
class AlbertActPairPreprocessor(AlbertActPreprocessor):
    """Sentence-pair ALBERT-ACT preprocessor: `[CLS] a [SEP] b [SEP]`, padded.

    As `AlbertActPreprocessor`, for two texts: the ids of Hugging Face's
    `AlbertTokenizer(a, b, truncation=True, max_length=sequence_length,
    padding="max_length")`. Pairs longer than `sequence_length - 3` tokens
    are truncated longest-first: tokens are removed from the end of the
    longer text until both have the same length, then from both, keeping
    `ceil(n / 2)` of the first and `floor(n / 2)` of the second.

    `x` must be a tuple `(first, second)` of strings, batches of strings or
    string tensors of the same shape. `preprocessor((a, b))` takes the tuple
    as the pair; in `tf.data`, map elements `((a, b), y)` directly, or
    `(a, b)` with `lambda a, b: preprocessor((a, b))`.

    Args:
        tokenizer: an `AlbertActTokenizer`.
        sequence_length: int, the length of the packed sequences (at least
            3). Defaults to 512.
        **kwargs: arguments of `keras.layers.Layer` (e.g. `name`).

    Returns:
        As `AlbertActPreprocessor`, with `segment_ids` 0 up to the first
        `[SEP]` and 1 after it (0 on padding).

    Example:

    >>> import io, keras_act, sentencepiece as spm; proto = io.BytesIO()
    >>> spm.SentencePieceTrainer.train(sentence_iterator=iter(["the fox ran far away.", "a cat sat on a mat."] * 20), model_writer=proto, vocab_size=24, pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, control_symbols=["[CLS]", "[SEP]", "[MASK]"], minloglevel=2)
    >>> tokenizer = keras_act.AlbertActTokenizer(proto=proto.getvalue())
    >>> pair = keras_act.AlbertActPairPreprocessor(tokenizer, sequence_length=10)
    >>> x = pair(("a cat", "the fox"))
    >>> x["token_ids"].numpy().tolist()
    [2, 8, 5, 16, 7, 3, 5, 14, 20, 3]
    >>> x["segment_ids"].numpy().tolist()
    [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    """

    num_segments = 2

    def __call__(self, *args, **kwargs):
        if is_two_part_x(args):
            # `preprocessor((a, b))`: the tuple is the pair `x`, not `(x, y)`.
            return super().__call__(x=args[0], **kwargs)
        return super().__call__(*args, **kwargs)

    def _segments(self, x):
        return check_two_part_x(self, x, "first", "second")


def is_two_part_x(args, second_fits=None):
    """Whether `preprocessor((a, b))` passes a two-part `x` (a sentence pair,
    a question and its context, a prompt and its choices) rather than the
    `(x, y)` that keras-hub's `Preprocessor.__call__` unpacks.

    Args:
        args: the positional arguments of the call.
        second_fits: optional predicate on `b` (e.g. "not a `y` dict").

    Returns:
        bool; when true, pass the tuple as `x=` (keras-hub unpacks only a
        single positional tuple).
    """
    return (
        len(args) == 1
        and type(args[0]) is tuple
        and len(args[0]) == 2
        and not isinstance(args[0][0], tuple)
        and (second_fits is None or second_fits(args[0][1]))
    )


def check_two_part_x(layer, x, first, second):
    """Raise a `ValueError` naming `layer` unless `x` is a 2-tuple; returns `x`.

    Args:
        layer: the preprocessor (its class names the error).
        x: the `x` received.
        first: str, what the first part is (`"questions"`).
        second: str, what the second part is (`"contexts"`).

    Returns:
        `x`, unchanged.
    """
    if not isinstance(x, tuple) or len(x) != 2:
        received = type(x).__name__ + (f" of length {len(x)}" if isinstance(x, tuple) else "")
        raise ValueError(
            f"{type(layer).__name__} takes `x=({first}, {second})`, a tuple of two "
            f"strings or batches of strings. Received: {received}."
        )
    return x


def _to_tensor(value):
    """Converts labels or sample weights given as lists or arrays to tensors."""
    if value is None or isinstance(value, (tf.Tensor, tf.RaggedTensor)):
        return value
    return tf.convert_to_tensor(value)
