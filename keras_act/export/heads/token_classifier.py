"""`TokenClassifierHead`: serves an `AlbertActTokenClassifier`, word by word."""

import tensorflow as tf

from keras_act.export.heads.base import LogitsHead
from keras_act.tokenizers.whitespace import split_words


class TokenClassifierHead(LogitsHead):
    """Serves an `AlbertActTokenClassifier` (named entities, part of speech).

    The raw-text signature takes `text` `[batch]`, splits it on whitespace
    in the graph (the words of the preprocessor) and labels every word by
    its first piece, as the model was trained. Words cut off by the
    preprocessor's `sequence_length` get label `-1` and score 0.

    Returns:
        Both signatures: float32 `logits` and `probabilities`
        `[batch, seq, num_classes]`, int32 `label` `[batch, seq]` (argmax,
        `-1` on padding) and `updates`. The raw-text signature also returns
        string `words` `[batch, words]` (`""` as padding), int32
        `word_labels` and float32 `word_scores` (the label's probability)
        `[batch, words]`.

    Example:

    ```python
    head = TokenClassifierHead(token_classifier, tokenizer)
    outputs, _ = head.serve_texts(preprocessor, {"text": tf.constant(["John lives in Oslo"])})
    outputs["word_labels"]
    ```
    """

    warmup_texts = ("John lives in Reykjavik .", "The quick brown fox jumps.", "")
    text_input_names = ("text",)

    def __call__(self, features):
        outputs = self.logits_and_updates(features)
        logits = tf.cast(outputs["logits"], tf.float32)
        real = tf.not_equal(features["padding_mask"], 0)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "label": tf.where(real, tf.argmax(logits, axis=-1, output_type=tf.int32), -1),
            "updates": outputs["updates"],
        }

    @staticmethod
    def words(texts):
        """The whitespace-separated words of `texts["text"]`, ragged `[batch, None]`."""
        return split_words(texts["text"])[0]

    def features_from_texts(self, preprocessor, texts):
        return preprocessor(x=self.words(texts))

    def serve_texts(self, preprocessor, texts):
        words = self.words(texts)
        features, word_ids = preprocessor.features_and_word_ids(words)
        outputs = self(features)
        # The first piece of each word (where the word index changes) gives
        # the word's label; a word with no pieces (U+200B alone) or cut off
        # by the window keeps -1.
        previous = tf.pad(word_ids[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
        first_pieces = tf.where(tf.logical_and(word_ids >= 0, tf.not_equal(word_ids, previous)))
        targets = tf.stack(
            [tf.cast(first_pieces[:, 0], tf.int32), tf.gather_nd(word_ids, first_pieces)], axis=1
        )
        shape = tf.stack([tf.shape(word_ids)[0], tf.cast(words.bounding_shape(axis=1), tf.int32)])

        def per_word(values, default):
            table = tf.fill(shape, tf.constant(default, values.dtype))
            return tf.tensor_scatter_nd_update(table, targets, tf.gather_nd(values, first_pieces))

        outputs.update(
            words=words.to_tensor(default_value="", shape=shape),
            word_labels=per_word(outputs["label"], -1),
            word_scores=per_word(tf.reduce_max(outputs["probabilities"], axis=-1), 0.0),
        )
        return outputs, features
