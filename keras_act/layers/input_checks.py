"""`TokenInputCheck`: clear errors for bad backbone inputs, in the graph."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_act")
class TokenInputCheck(keras.layers.Layer):
    """Checks `token_ids`, `segment_ids` and `padding_mask` before embedding.

    Token ids must lie in `[0, vocabulary_size)`, segment ids in
    `[0, num_segments)`, the sequence must fit the position table, and the
    three inputs must have one shape. A violation raises
    `tf.errors.InvalidArgumentError` naming the input and the allowed range,
    instead of an obscure gather error (or, on accelerators, silently wrong
    embeddings). The checks are graph ops, so they also hold inside
    `tf.function` and in exported SavedModels; XLA compiles them away.

    Args:
        vocabulary_size: int, number of token ids.
        num_segments: int, number of segment ids.
        max_sequence_length: int, size of the position table.
        **kwargs: other keyword arguments of `keras.layers.Layer`.

    Returns:
        The three inputs, unchanged, as a tuple `(token_ids, segment_ids,
        padding_mask)`.
    """

    def __init__(self, vocabulary_size, num_segments, max_sequence_length, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.num_segments = num_segments
        self.max_sequence_length = max_sequence_length

    def call(self, token_ids, segment_ids, padding_mask):
        token_ids = tf.convert_to_tensor(token_ids)
        shape = tf.shape(token_ids)
        checks = [
            tf.debugging.assert_equal(
                tf.shape(segment_ids),
                shape,
                message="`segment_ids` must have the shape of `token_ids`",
            ),
            tf.debugging.assert_equal(
                tf.shape(padding_mask),
                shape,
                message="`padding_mask` must have the shape of `token_ids`",
            ),
            tf.debugging.assert_less_equal(
                shape[1],
                self.max_sequence_length,
                message=(
                    "The sequence length exceeds the position table: at most "
                    f"max_sequence_length={self.max_sequence_length} tokens"
                ),
            ),
            tf.debugging.assert_non_negative(
                token_ids, message="`token_ids` must be >= 0"
            ),
            tf.debugging.assert_less(
                token_ids,
                tf.cast(self.vocabulary_size, token_ids.dtype),
                message=(
                    "`token_ids` must be < vocabulary_size="
                    f"{self.vocabulary_size}"
                ),
            ),
            tf.debugging.assert_non_negative(
                segment_ids, message="`segment_ids` must be >= 0"
            ),
            tf.debugging.assert_less(
                segment_ids,
                tf.cast(self.num_segments, segment_ids.dtype),
                message=f"`segment_ids` must be < num_segments={self.num_segments}",
            ),
        ]
        with tf.control_dependencies(checks):
            return (
                tf.identity(token_ids),
                tf.identity(segment_ids),
                tf.identity(padding_mask),
            )

    def compute_output_spec(self, token_ids, segment_ids, padding_mask):
        return tuple(
            keras.KerasTensor(x.shape, dtype=x.dtype)
            for x in (token_ids, segment_ids, padding_mask)
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_segments": self.num_segments,
                "max_sequence_length": self.max_sequence_length,
            }
        )
        return config
