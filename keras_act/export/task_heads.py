"""Serving heads of the fine-tuning tasks: regression, token classification,
extractive question answering and multiple choice.

They are registered for `AlbertActTextRegressor`, `AlbertActTokenClassifier`,
`AlbertActQuestionAnswerer` and `AlbertActMultipleChoice` when
`keras_act.export` is imported, so
`export_saved_model(task, None, "saved_models/NAME")` (or `python -m
keras_act.export --model task.keras ...`) serves them. Each answers in terms
of the client's text where the task has one: the token classifier labels
the whitespace-separated words of `text`, the question answerer returns the
answer's words from `context`.
"""

import tensorflow as tf

from keras_act.export.serving_heads import (
    ClassifierHead,
    ServingHead,
    _classifier_with_updates,
    register_serving_head,
)
from keras_act.models.albert_act_multiple_choice import AlbertActMultipleChoice
from keras_act.models.albert_act_question_answerer import AlbertActQuestionAnswerer
from keras_act.models.albert_act_question_answerer_preprocessor import best_answer_spans
from keras_act.models.albert_act_text_regressor import AlbertActTextRegressor
from keras_act.models.albert_act_token_classifier import AlbertActTokenClassifier
from keras_act.tokenizers.whitespace import split_words


class RegressorHead(ServingHead):
    """Serves an `AlbertActTextRegressor` (e.g. STS-B similarity).

    Returns:
        A dict of float32 `score` `[batch]` and `updates` `[batch, seq]`.

    Example:

    ```python
    head = RegressorHead(regressor, tokenizer)
    head(preprocessor((["a man plays"], ["a person plays"])))["score"]
    ```
    """

    warmup_texts = (
        ("A man is playing a guitar.", "A person plays an instrument."),
        ("The cat sleeps.", "Stocks fell sharply on Monday."),
        ("", ""),
    )

    def __init__(self, model, tokenizer, top_k=5):
        super().__init__(model, tokenizer, top_k=top_k)
        self._run = _classifier_with_updates(model)

    def __call__(self, features):
        outputs = self._run(features)
        return {
            "score": tf.reshape(tf.cast(outputs["logits"], tf.float32), [-1]),
            "updates": outputs["updates"],
        }


class TokenClassifierHead(ServingHead):
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

    def __init__(self, model, tokenizer, top_k=5):
        super().__init__(model, tokenizer, top_k=top_k)
        self._run = _classifier_with_updates(model)

    def __call__(self, features):
        outputs = self._run(features)
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


class QuestionAnswererHead(ServingHead):
    """Serves an `AlbertActQuestionAnswerer` (SQuAD-style extractive QA).

    The raw-text signature takes `question` and `context` `[batch]`. The
    best span `start <= end < start + max_answer_length` inside the context
    part of the window (segment 1, before the closing `[SEP]`) is chosen by the
    sum of its start and end logits, as in `decode_answers`.

    Args:
        model: the `AlbertActQuestionAnswerer`.
        tokenizer: its tokenizer.
        top_k: ignored.
        max_answer_length: int, the longest answer in pieces. Defaults to 30.

    Returns:
        Both signatures: float32 `start_logits`, `end_logits` `[batch, seq]`,
        int32 `answer_start`, `answer_end` `[batch]` (token positions, both
        inclusive), float32 `answer_score` (their summed logits) and
        `no_answer_score` (the `[CLS]` span's, SQuAD 2.0), and `updates`.
        The raw-text signature also returns string `answer_text` `[batch]`:
        the context's words the span covers, in their original spelling.
        A context with no words in the window gives the `[CLS]` span
        (`0, 0`, `no_answer_score`) and `""`. It also returns bool
        `context_truncated` `[batch]`: the context did not fit in the
        window (there is no document stride), so the answer may lie in its
        cut-off end.

    Example:

    ```python
    head = QuestionAnswererHead(answerer, tokenizer)
    outputs, _ = head.serve_texts(
        preprocessor,
        {"question": tf.constant(["Where?"]), "context": tf.constant(["In Oslo."])},
    )
    outputs["answer_text"]
    ```
    """

    warmup_texts = (
        ("Where does John live?", "John lives in Reykjavik with his two cats."),
        ("How many layers does a token use?", "Each token halts after its own number of layers."),
        ("", ""),
    )
    text_input_names = ("question", "context")

    def __init__(self, model, tokenizer, top_k=5, max_answer_length=30):
        super().__init__(model, tokenizer, top_k=top_k)
        if (
            isinstance(max_answer_length, bool)
            or not isinstance(max_answer_length, int)
            or max_answer_length < 1
        ):
            raise ValueError(
                "`max_answer_length` must be a positive int. Received: "
                f"max_answer_length={max_answer_length!r}"
            )
        self.max_answer_length = max_answer_length
        self._run = _classifier_with_updates(model)

    def __call__(self, features):
        outputs = self._run(features)
        spans = best_answer_spans(
            tf.cast(outputs["logits"], tf.float32),
            features["segment_ids"],
            features["padding_mask"],
            self.max_answer_length,
        )
        return {**spans, "updates": outputs["updates"]}

    def serve_texts(self, preprocessor, texts):
        contexts = texts["context"]
        features, layout = preprocessor.features_and_layout(texts["question"], contexts)
        outputs = self(features)
        outputs["answer_text"] = preprocessor.answer_texts(
            contexts, layout, outputs["answer_start"], outputs["answer_end"]
        )
        # No document stride: a context longer than the window loses its end.
        total_pieces = tf.reduce_sum(layout["pieces_per_word"], axis=1)
        outputs["context_truncated"] = layout["context_ids"].row_lengths() < total_pieces
        return outputs, features


class MultipleChoiceHead(ClassifierHead):
    """Serves an `AlbertActMultipleChoice` (SWAG, COPA, RACE, ...).

    The raw-text signature takes `prompt` string `[batch]` and `choices`
    string `[batch, num_choices]` (the same number of choices in a
    request); the token-id signature takes `[batch, num_choices, seq]`
    inputs.

    Returns:
        A dict of float32 `logits` and `probabilities` (softmax over the
        choices) `[batch, num_choices]`, int32 `label` `[batch]` (the chosen
        index) and `updates` `[batch, num_choices, seq]`; the token outputs
        are `[batch, num_choices, seq]` too.

    Example:

    ```python
    head = MultipleChoiceHead(model, tokenizer)
    outputs, _ = head.serve_texts(
        preprocessor,
        {
            "prompt": tf.constant(["The glass fell."]),
            "choices": tf.constant([["It broke.", "It sang."]]),
        },
    )
    outputs["label"]
    ```
    """

    warmup_texts = (
        ("The glass fell off the table.", ["It broke.", "It sang."]),
        ("She was hungry.", ["She ate.", ""]),
        ("", ["", ""]),
    )
    text_input_names = ("prompt", "choices")
    text_input_ranks = (1, 2)
    token_ids_rank = 3

    def __init__(self, model, tokenizer, top_k=5):
        # Not `ClassifierHead.__init__`: the number of classes (choices) is
        # only known per request.
        ServingHead.__init__(self, model, tokenizer, top_k=top_k)
        self._run = _classifier_with_updates(model)


register_serving_head(AlbertActTextRegressor, RegressorHead)
register_serving_head(AlbertActTokenClassifier, TokenClassifierHead)
register_serving_head(AlbertActQuestionAnswerer, QuestionAnswererHead)
register_serving_head(AlbertActMultipleChoice, MultipleChoiceHead)
