"""`AlbertActTokenClassifierPreprocessor`: words and word labels to token labels."""

import keras
import tensorflow as tf
from keras_hub.models import Preprocessor

from keras_act.models.albert_act_backbone import AlbertActBackbone
from keras_act.tokenizers.albert_act_preprocessor import check_sequence_length, check_tokenizer
from keras_act.tokenizers.albert_act_tokenizer import AlbertActTokenizer
from keras_act.tokenizers.preprocessing_outputs import preprocessing_outputs

# The label of tokens without one ([CLS], [SEP], padding, the pieces of a
# word after its first): ignored by the loss and metrics (Hugging Face's).
IGNORE_LABEL = -100


def to_ragged_words(words, name="x"):
    """Words as a `[batch, None]` string `tf.RaggedTensor`, and whether `words`
    was a single example (`[None]`)."""
    if isinstance(words, (list, tuple)):
        if words and all(isinstance(w, (str, bytes)) for w in words):
            words = tf.constant(words, dtype=tf.string)
        else:
            words = tf.ragged.constant([list(w) for w in words], dtype=tf.string)
    elif not isinstance(words, (tf.Tensor, tf.RaggedTensor)):
        words = tf.convert_to_tensor(words)
    if words.dtype != tf.string:
        raise ValueError(f"`{name}` must hold words (strings). Received dtype {words.dtype}.")
    if words.shape.rank == 1:
        if isinstance(words, tf.RaggedTensor):
            raise ValueError(f"`{name}` must be dense when it is one example of words.")
        return tf.RaggedTensor.from_tensor(words[tf.newaxis]), True
    if words.shape.rank != 2:
        raise ValueError(
            f"`{name}` must be words `[batch, words]` (a list of lists of strings or a "
            f"ragged string tensor). Received a tensor of rank {words.shape.rank}."
        )
    if not isinstance(words, tf.RaggedTensor):
        words = tf.RaggedTensor.from_tensor(words)
    return words, False


def word_pieces(tokenizer, words):
    """Tokenizes each word on its own: ids as a `[batch, words, pieces]` ragged tensor.

    SentencePiece never makes a piece across whitespace, so this is the
    tokenization of the text `" ".join(words)`, with each piece's word known.
    """
    ids = tokenizer(words.flat_values)
    return words.with_flat_values(ids).with_row_splits_dtype(tf.int64)


@keras.saving.register_keras_serializable(package="keras_act")
class AlbertActTokenClassifierPreprocessor(Preprocessor):
    """Preprocessor of `AlbertActTokenClassifier`: words to pieces, word labels
    to token labels.

    `x` is a batch of pre-split words (a list of lists of strings, or a
    `[batch, None]` ragged string tensor; one list of strings is one
    example), as in CoNLL-2003 or Universal Dependencies. Each word is
    tokenized on its own; the sequence is truncated to `sequence_length - 2`
    pieces and packed as `[CLS] pieces [SEP]`, padded with `<pad>`.

    `y`, when given, holds one integer label per word (same ragged shape as
    `x`). The first piece of each word gets the word's label; the other
    pieces, `[CLS]`, `[SEP]` and padding get `-100` and a sample weight of
    0, so the loss and weighted metrics ignore them (the "first sub-token"
    scheme of BERT's NER). A `sample_weight` per example (`[batch]`) scales
    each example's token weights.

    Args:
        tokenizer: an `AlbertActTokenizer`.
        sequence_length: int, the packed length (at least 3). Defaults to
            512.
        **kwargs: arguments of `keras.layers.Layer` (e.g. `name`).

    Returns:
        `x` as a dict of int32 `token_ids`, `segment_ids` and
        `padding_mask` `[batch, sequence_length]`; with labels, also `y`
        (int32 `[batch, sequence_length]`, -100 where ignored) and
        `sample_weight` (float32, 1 on the first piece of each word).

    Example:

    >>> import io, keras_act, sentencepiece as spm; proto = io.BytesIO()
    >>> spm.SentencePieceTrainer.train(sentence_iterator=iter(["the fox ran far away.", "a cat sat on a mat."] * 20), model_writer=proto, vocab_size=24, pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, control_symbols=["[CLS]", "[SEP]", "[MASK]"], minloglevel=2)
    >>> tokenizer = keras_act.AlbertActTokenizer(proto=proto.getvalue())
    >>> word_inputs = keras_act.AlbertActTokenClassifierPreprocessor(tokenizer, 10)
    >>> x, y, sample_weight = word_inputs([["the", "fox", "ran"]], [[0, 1, 0]])
    >>> y.numpy().tolist()
    [[-100, 0, -100, -100, -100, 1, -100, -100, 0, -100]]
    >>> sample_weight.numpy().tolist()
    [[0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0]]
    >>> word_inputs.word_ids([["the", "fox", "ran"]]).numpy().tolist()  # each token's word
    [[-1, 0, 0, 0, 0, 1, 1, 1, 2, -1]]
    """

    backbone_cls = AlbertActBackbone
    tokenizer_cls = AlbertActTokenizer

    def __init__(self, tokenizer, sequence_length=512, **kwargs):
        super().__init__(**kwargs)
        check_tokenizer(self, tokenizer)
        check_sequence_length(self, sequence_length, 3)
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.built = True

    def _pack(self, rows, start, end, pad):
        """`[start] row[: sequence_length - 2] [end]`, padded: a dense tensor."""
        rows = rows[:, : self.sequence_length - 2]
        batch = rows.nrows()
        column = lambda value: tf.fill([batch, 1], tf.cast(value, rows.dtype))  # noqa: E731
        packed = tf.concat([column(start), rows, column(end)], axis=1)
        return packed.to_tensor(
            default_value=tf.cast(pad, rows.dtype), shape=[None, self.sequence_length]
        )

    def _word_rows(self, x):
        """The ragged `[batch, words, pieces]` ids of the words `x`."""
        words, single = to_ragged_words(x)
        return word_pieces(self.tokenizer, words), single

    def _features(self, pieces):
        """The packed model inputs of `[batch, words, pieces]` ids."""
        tokenizer = self.tokenizer
        ids = self._pack(pieces.merge_dims(1, 2), tokenizer.cls_token_id, tokenizer.sep_token_id, -1)
        padding_mask = tf.not_equal(ids, -1)
        return {
            "token_ids": tf.where(padding_mask, ids, tokenizer.pad_token_id),
            "segment_ids": tf.zeros_like(ids),
            "padding_mask": tf.cast(padding_mask, "int32"),
        }

    @preprocessing_outputs
    def call(self, x, y=None, sample_weight=None):
        with tf.device("cpu"):
            pieces, single = self._word_rows(x)
            features = self._features(pieces)
            if y is not None:
                labels = self._token_labels(pieces, y)
                weights = tf.cast(tf.not_equal(labels, IGNORE_LABEL), tf.float32)
                if sample_weight is not None:
                    sample_weight = tf.reshape(tf.cast(sample_weight, tf.float32), [-1, 1])
                    weights = weights * sample_weight
                y, sample_weight = labels, weights
            if single:
                features = {k: v[0] for k, v in features.items()}
                if y is not None:
                    y, sample_weight = y[0], sample_weight[0]
        return keras.utils.pack_x_y_sample_weight(features, y, sample_weight)

    def _token_labels(self, pieces, y):
        """Word labels to token labels `[batch, sequence_length]`."""
        if isinstance(y, (list, tuple)):
            y = tf.ragged.constant(y) if y and isinstance(y[0], (list, tuple)) else tf.constant(y)
        elif not isinstance(y, (tf.Tensor, tf.RaggedTensor)):
            y = tf.convert_to_tensor(y)
        if y.shape.rank == 1 and not isinstance(y, tf.RaggedTensor):
            y = y[tf.newaxis]
        if not isinstance(y, tf.RaggedTensor):
            y = tf.RaggedTensor.from_tensor(y)
        y = tf.cast(y, tf.int32).with_row_splits_dtype(tf.int64)
        checks = [
            tf.debugging.assert_equal(
                y.row_lengths(),
                pieces.row_lengths(),
                message="AlbertActTokenClassifierPreprocessor: `y` must hold one label per word.",
            )
        ]
        with tf.control_dependencies(checks):
            per_word = pieces.values  # [total words, pieces]
            first = tf.equal(tf.ragged.range(per_word.row_lengths()).flat_values, 0)
            word_label = tf.gather(y.flat_values, per_word.value_rowids())
            labels = tf.where(first, word_label, IGNORE_LABEL)
        labels = pieces.with_flat_values(labels).merge_dims(1, 2)
        return self._pack(labels, IGNORE_LABEL, IGNORE_LABEL, IGNORE_LABEL)

    @preprocessing_outputs
    def word_ids(self, x):
        """The index of the word of each token, `-1` for `[CLS]`, `[SEP]`,
        padding: int32 `[batch, sequence_length]`, to turn token predictions
        back into word predictions (read the first piece of each word)."""
        with tf.device("cpu"):
            pieces, single = self._word_rows(x)
            ids = self._word_ids(pieces)
            return ids[0] if single else ids

    @preprocessing_outputs
    def features_and_word_ids(self, x):
        """The features of a batch of words and their `word_ids`, tokenized
        once (what a serving signature needs to label words).

        Args:
            x: a batch of words, as for `call`.

        Returns:
            A tuple of the features dict and int32 `word_ids`
            `[batch, sequence_length]`.
        """
        with tf.device("cpu"):
            pieces, single = self._word_rows(x)
            if single:
                raise ValueError("`features_and_word_ids` takes a batch of examples.")
            return self._features(pieces), self._word_ids(pieces)

    def _word_ids(self, pieces):
        per_word = pieces.values  # [total words, pieces]
        total_words = tf.shape(per_word.row_splits, out_type=tf.int64)[0] - 1
        word_in_example = tf.range(total_words) - tf.gather(pieces.row_splits, pieces.value_rowids())
        word_index = tf.gather(word_in_example, per_word.value_rowids())
        rows = pieces.with_flat_values(tf.cast(word_index, tf.int32)).merge_dims(1, 2)
        return self._pack(rows, -1, -1, -1)

    def get_config(self):
        config = super().get_config()
        config.update({"sequence_length": self.sequence_length})
        return config
