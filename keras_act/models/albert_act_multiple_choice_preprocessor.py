"""`AlbertActMultipleChoicePreprocessor`: a prompt and its choices to
`[batch, num_choices, sequence_length]` ids."""

import keras
import numpy as np
import tensorflow as tf

from keras_act.models.albert_act_text_classifier_preprocessor import (
    AlbertActTextClassifierPreprocessor,
)
from keras_act.tokenizers.albert_act_preprocessor import check_two_part_x, is_two_part_x
from keras_act.tokenizers.preprocessing_outputs import preprocessing_outputs


def _string_tensor(value, name):
    if isinstance(value, (str, bytes, list, tuple)):
        value = tf.constant(value, dtype=tf.string)
    elif not isinstance(value, tf.Tensor):
        value = tf.convert_to_tensor(value)
    if value.dtype != tf.string:
        raise ValueError(f"`{name}` must hold strings. Received dtype {value.dtype}.")
    return value


@keras.saving.register_keras_serializable(package="keras_act")
class AlbertActMultipleChoicePreprocessor(AlbertActTextClassifierPreprocessor):
    """Preprocessor of `AlbertActMultipleChoice` (SWAG, RACE, COPA, ...).

    `x` is a tuple `(prompts, choices)`: `prompts` a batch of strings
    `[batch]`, `choices` the candidate endings or answers `[batch,
    num_choices]` (the same number for every example). Each choice is
    packed with its prompt as `[CLS] prompt [SEP] choice [SEP]`, truncated
    longest-first and padded, as the text classifier's sentence pairs; `y`
    (the index of the right choice) and `sample_weight` pass through.

    Args:
        tokenizer: an `AlbertActTokenizer`.
        sequence_length: int, the packed length of each pair. Defaults to
            512.
        **kwargs: arguments of `keras.layers.Layer` (e.g. `name`).

    Returns:
        `x` as a dict of int32 `token_ids`, `segment_ids`, `padding_mask`
        `[batch, num_choices, sequence_length]` (`[num_choices,
        sequence_length]` for one example), followed by `y` and
        `sample_weight` when given.

    Example:

    >>> import io, keras_act, sentencepiece as spm; proto = io.BytesIO()
    >>> spm.SentencePieceTrainer.train(sentence_iterator=iter(["the fox ran far away.", "a cat sat on a mat."] * 20), model_writer=proto, vocab_size=24, pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, control_symbols=["[CLS]", "[SEP]", "[MASK]"], minloglevel=2)
    >>> tokenizer = keras_act.AlbertActTokenizer(proto=proto.getvalue())
    >>> choice_inputs = keras_act.AlbertActMultipleChoicePreprocessor(tokenizer, 16)
    >>> x, y = choice_inputs(x=(["the fox ran."], [["a cat sat.", "far away."]]), y=[0])
    >>> x["token_ids"].shape, y
    (TensorShape([1, 2, 16]), [0])
    """

    num_segments = 2

    def __call__(self, *args, **kwargs):
        if is_two_part_x(args, _looks_like_choices):
            # `preprocessor((prompts, choices))`: the tuple is `x`.
            return super().__call__(x=args[0], **kwargs)
        return super().__call__(*args, **kwargs)

    @preprocessing_outputs
    def call(self, x, y=None, sample_weight=None):
        prompts, choices = check_two_part_x(self, x, "prompts", "choices")
        prompts, choices = _string_tensor(prompts, "prompts"), _string_tensor(choices, "choices")
        single = prompts.shape.rank == 0
        if single:
            prompts, choices = prompts[tf.newaxis], choices[tf.newaxis]
        if prompts.shape.rank != 1 or choices.shape.rank != 2:
            raise ValueError(
                f"{type(self).__name__} needs prompts `[batch]` and choices `[batch, "
                f"num_choices]`. Received shapes {prompts.shape} and {choices.shape}."
            )
        num_choices = tf.shape(choices)[1]
        pairs = (tf.repeat(prompts, num_choices), tf.reshape(choices, [-1]))
        features = super().call(pairs)
        shape = [-1, num_choices, self.sequence_length]
        features = {key: tf.reshape(value, shape) for key, value in features.items()}
        if single:
            features = {key: value[0] for key, value in features.items()}
        return keras.utils.pack_x_y_sample_weight(features, y, sample_weight)


def _looks_like_choices(value):
    """Whether `value` is a batch of lists of strings (not labels)."""
    if isinstance(value, tf.Tensor):
        return value.dtype == tf.string
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "SUO"
    if isinstance(value, (list, tuple)) and value:
        return all(isinstance(v, (str, bytes)) for v in value) or isinstance(
            value[0], (list, tuple)
        )
    return False
