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

    ```python
    tokenizer = keras_act.AlbertActTokenizer(proto="spiece.model")
    preprocessor = keras_act.AlbertActTextClassifierPreprocessor(
        tokenizer, sequence_length=128
    )
    preprocessor(["a charming movie", "a dull one"])["token_ids"].shape
    # (2, 128)
    x = preprocessor(x=(["A man plays."], ["Someone plays."]))
    ds = tf.data.Dataset.from_tensor_slices(((premises, hypotheses), labels))
    ds = ds.batch(32).map(preprocessor)
    ```
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
