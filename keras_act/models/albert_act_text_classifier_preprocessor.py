"""`AlbertActTextClassifierPreprocessor`: one or more texts to packed ids."""

import keras

from keras_act.models.albert_act_backbone import AlbertActBackbone
from keras_act.tokenizers.albert_act_preprocessor import AlbertActPreprocessor
from keras_act.tokenizers.albert_act_tokenizer import AlbertActTokenizer


@keras.saving.register_keras_serializable(package="keras_act")
class AlbertActTextClassifierPreprocessor(AlbertActPreprocessor):
    """Preprocessor of the ALBERT-ACT text classifier and regressor.

    Takes single texts or tuples of texts (sentence pairs for GLUE's MRPC,
    QQP, STS-B, MNLI, QNLI, RTE, WNLI) and packs them as
    `[CLS] a [SEP] (b [SEP])`, padded to `sequence_length`, with
    `AlbertActPreprocessor`'s tokenization and longest-first truncation (the
    ids of Hugging Face's `AlbertTokenizer`). Labels (`y`) and
    `sample_weight` pass through unchanged.

    As in keras-hub, a tuple `x` holds the segments and a list is a batch:
    `preprocessor("text")`, `preprocessor(["a", "b"])`,
    `preprocessor(x=(firsts, seconds))`. Calling it with one positional
    2- or 3-tuple unpacks `(x, y[, sample_weight])` (a `tf.data` element);
    pass sentence pairs as `x=(firsts, seconds)`, or map
    `((firsts, seconds), labels)` elements.

    Args:
        tokenizer: an `AlbertActTokenizer`.
        sequence_length: int, the length of the packed sequences. Defaults
            to 512.
        **kwargs: arguments of `keras.layers.Layer` (e.g. `name`).

    Returns:
        `x` as a dict of int32 `token_ids`, `segment_ids` (0 for the first
        text, 1 for the second, 0 on padding) and `padding_mask`, each
        `[batch, sequence_length]`, followed by `y` and `sample_weight` when
        given.

    Example:

    >>> import io, keras_act, sentencepiece as spm; proto = io.BytesIO()
    >>> spm.SentencePieceTrainer.train(sentence_iterator=iter(["the fox ran far away.", "a cat sat on a mat."] * 20), model_writer=proto, vocab_size=24, pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, control_symbols=["[CLS]", "[SEP]", "[MASK]"], minloglevel=2)
    >>> tokenizer = keras_act.AlbertActTokenizer(proto=proto.getvalue())
    >>> classifier_inputs = keras_act.AlbertActTextClassifierPreprocessor(tokenizer, 16)
    >>> classifier_inputs(["a cat sat.", "the fox"])["token_ids"].shape
    TensorShape([2, 16])
    >>> x = classifier_inputs(x=(["a cat"], ["the fox"]))
    >>> x["segment_ids"].numpy().tolist()
    [[0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]]
    >>> import tensorflow as tf
    >>> ds = tf.data.Dataset.from_tensor_slices(((["a cat"], ["the fox"]), [1]))
    >>> x, y = ds.batch(8).map(classifier_inputs).get_single_element()
    >>> x["token_ids"].shape, y.numpy().tolist()
    (TensorShape([1, 16]), [1])
    """

    backbone_cls = AlbertActBackbone
    tokenizer_cls = AlbertActTokenizer
    num_segments = None  # One text or a tuple of texts.

    def _segments(self, x):
        if isinstance(x, tuple):
            if not x:
                raise ValueError(f"{type(self).__name__} received an empty tuple of texts.")
            return x
        return (x,)
