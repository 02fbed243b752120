"""ALBERT-ACT preprocessors: raw text to `token_ids`, `segment_ids`, `padding_mask`."""

import keras
import tensorflow as tf
from keras_hub.layers import MultiSegmentPacker
from keras_hub.models import Preprocessor

from keras_act.models.albert_act_backbone import AlbertActBackbone
from keras_act.tokenizers.albert_act_tokenizer import AlbertActTokenizer

# The packer pads with this value, so that `padding_mask` is exact even when
# the text itself contains `<pad>` (id 0), as Hugging Face's attention mask.
_PACKER_PAD = -1


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

    ```python
    tokenizer = keras_act.AlbertActTokenizer(proto="spiece.model")
    preprocessor = keras_act.AlbertActPreprocessor(tokenizer, sequence_length=8)
    preprocessor("Test sentence with [MASK].")["token_ids"]
    # [2, 1289, 5123, 29, 4, 13, 9, 3]
    ds = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(32)
    ds = ds.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
    ```
    """

    backbone_cls = AlbertActBackbone
    tokenizer_cls = AlbertActTokenizer
    num_segments = 1

    def __init__(self, tokenizer, sequence_length=512, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(tokenizer, AlbertActTokenizer):
            raise ValueError(
                f"{type(self).__name__} needs an `AlbertActTokenizer`. "
                f"Received: tokenizer={tokenizer!r}"
            )
        self.tokenizer = tokenizer
        self.packer = None
        self.sequence_length = sequence_length
        if tokenizer.proto is not None:
            self.build(None)

    @property
    def sequence_length(self):
        """The packed length; setting it also re-sizes the packer."""
        return self._sequence_length

    @sequence_length.setter
    def sequence_length(self, value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"`sequence_length` must be an int. Received: sequence_length={value!r}")
        if value < 3:
            raise ValueError(
                "`sequence_length` must be at least 3 ([CLS], one token, [SEP]). "
                f"Received: sequence_length={value}"
            )
        self._sequence_length = value
        if self.packer is not None:
            self.packer.sequence_length = value

    def build(self, input_shape=None):
        # The packer needs the special token ids: it is made now when the
        # tokenizer has its vocabulary, or at the first call once it has
        # (a Keras asset, loaded after the config when a model is restored).
        self.packer = MultiSegmentPacker(
            sequence_length=self.sequence_length,
            start_value=self.tokenizer.cls_token_id,
            end_value=self.tokenizer.sep_token_id,
            pad_value=_PACKER_PAD,
            # Round-robin trimming of two segments keeps
            # (ceil(n / 2), floor(n / 2)) tokens when both are too long and
            # leaves a short one whole: Hugging Face's "longest_first".
            truncate="round_robin",
            _allow_python_workflow=False,
        )
        self.built = True

    def call(self, x, y=None, sample_weight=None):
        segments = self._segments(x)
        with tf.device("cpu"):
            token_ids, segment_ids = self.packer(tuple(self.tokenizer(s) for s in segments))
            padding_mask = tf.not_equal(token_ids, _PACKER_PAD)
            x = {
                "token_ids": tf.where(padding_mask, token_ids, self.tokenizer.pad_token_id),
                "segment_ids": segment_ids,
                "padding_mask": tf.cast(padding_mask, "int32"),
            }
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
        `x` as a dict of int32 `token_ids`, `segment_ids` (0 up to the first
        `[SEP]`, 1 after it, 0 on padding) and `padding_mask`, each
        `[batch, sequence_length]` (`[sequence_length]` for one pair),
        followed by `y` and `sample_weight` when given.

    Example:

    ```python
    preprocessor = keras_act.AlbertActPairPreprocessor(tokenizer, sequence_length=8)
    x = preprocessor(("Question?", "Answer"))
    x["token_ids"]    # [2, 1301, 60, 3, 1623, 3, 0, 0]
    x["segment_ids"]  # [0, 0, 0, 0, 1, 1, 0, 0]
    ```
    """

    num_segments = 2

    def __call__(self, *args, **kwargs):
        if is_two_part_x(args):
            # `preprocessor((a, b))`: the tuple is the pair `x`, not `(x, y)`.
            return keras.layers.Layer.__call__(self, *args, **kwargs)
        return super().__call__(*args, **kwargs)

    def _segments(self, x):
        if not isinstance(x, tuple) or len(x) != 2:
            raise ValueError(
                "AlbertActPairPreprocessor takes `x=(first, second)`, a tuple of "
                "two strings or string batches. Received: "
                f"{type(x).__name__}{f' of length {len(x)}' if isinstance(x, tuple) else ''}."
            )
        return x


def is_two_part_x(args, second_fits=None):
    """Whether `preprocessor((a, b))` passes a two-part `x` (a sentence pair,
    a question and its context, a prompt and its choices) rather than the
    `(x, y)` that keras-hub's `Preprocessor.__call__` unpacks.

    Args:
        args: the positional arguments of the call.
        second_fits: optional predicate on `b` (e.g. "not a `y` dict").

    Returns:
        bool; when true, call `keras.layers.Layer.__call__` directly.
    """
    return (
        len(args) == 1
        and type(args[0]) is tuple
        and len(args[0]) == 2
        and not isinstance(args[0][0], tuple)
        and (second_fits is None or second_fits(args[0][1]))
    )


def _to_tensor(value):
    """Converts labels or sample weights given as lists or arrays to tensors."""
    if value is None or isinstance(value, (tf.Tensor, tf.RaggedTensor)):
        return value
    return tf.convert_to_tensor(value)
