"""`AlbertActQuestionAnswererPreprocessor`: question, context and character
spans to packed ids and token spans."""

import keras
import numpy as np
import tensorflow as tf
from keras_hub.models import Preprocessor

from keras_act.checks import check_positive_int
from keras_act.models.albert_act_backbone import AlbertActBackbone
from keras_act.tokenizers.albert_act_preprocessor import (
    check_sequence_length,
    check_tokenizer,
    check_two_part_x,
    is_two_part_x,
)
from keras_act.tokenizers.albert_act_tokenizer import AlbertActTokenizer
from keras_act.tokenizers.preprocessing_outputs import preprocessing_outputs
from keras_act.tokenizers.whitespace import split_words


def _strings(value, name):
    """A string `tf.Tensor` of rank 0 or 1."""
    if isinstance(value, (str, bytes)):
        value = tf.constant(value)
    elif isinstance(value, (list, tuple)):
        value = tf.constant(value, dtype=tf.string)
    elif not isinstance(value, tf.Tensor):
        value = tf.convert_to_tensor(value)
    if value.dtype != tf.string or value.shape.rank not in (0, 1):
        raise ValueError(f"`{name}` must be a string or a batch of strings. Received {value!r}.")
    return value


def best_answer_spans(span_logits, segment_ids, padding_mask, max_answer_length=30):
    """The best answer span of each window, in the graph.

    The span `start <= end < start + max_answer_length` inside the context
    (segment 1, before the closing `[SEP]`; a "[SEP]" typed in the context is
    context) with the largest `start_logit + end_logit`; among equal scores
    the first start, then the first end.

    Args:
        span_logits: float `[batch, seq, 2]`, the `AlbertActQuestionAnswerer`
            output (scores are summed in its dtype).
        segment_ids: int `[batch, seq]`.
        padding_mask: int or bool `[batch, seq]`.
        max_answer_length: int, the longest answer in pieces.

    Returns:
        A dict of `start_logits`, `end_logits` `[batch, seq]`, int32
        `answer_start`, `answer_end` `[batch]` (`0, 0`, the `[CLS]` span, when
        the context is empty), `answer_score` (`no_answer_score` then) and
        `no_answer_score` (the `[CLS]` span's score, as in SQuAD 2.0).
    """
    start_logits, end_logits = span_logits[..., 0], span_logits[..., 1]
    length = tf.shape(start_logits)[1]
    positions = tf.range(length)
    closing = tf.reduce_sum(tf.cast(tf.not_equal(padding_mask, 0), tf.int32), axis=1) - 1
    in_context = tf.logical_and(
        tf.equal(segment_ids, 1), positions[tf.newaxis, :] < closing[:, tf.newaxis]
    )
    # scores[b, s, e] of the span s..e, allowed when both ends are in the
    # context and 0 <= e - s < max_answer_length.
    scores = start_logits[:, :, tf.newaxis] + end_logits[:, tf.newaxis, :]
    gap = positions[tf.newaxis, :] - positions[:, tf.newaxis]
    allowed = tf.logical_and(
        tf.logical_and(in_context[:, :, tf.newaxis], in_context[:, tf.newaxis, :]),
        tf.logical_and(gap >= 0, gap < max_answer_length)[tf.newaxis],
    )
    flat = tf.reshape(
        tf.where(allowed, scores, tf.constant(-float("inf"), scores.dtype)),
        [tf.shape(scores)[0], -1],
    )
    best = tf.argmax(flat, axis=-1, output_type=tf.int32)  # row-major: first s, then e
    has_span = tf.reduce_any(tf.reshape(allowed, tf.shape(flat)), axis=-1)
    no_answer_score = start_logits[:, 0] + end_logits[:, 0]
    return {
        "start_logits": start_logits,
        "end_logits": end_logits,
        "answer_start": tf.where(has_span, best // length, 0),
        "answer_end": tf.where(has_span, best % length, 0),
        "answer_score": tf.where(has_span, tf.reduce_max(flat, axis=-1), no_answer_score),
        "no_answer_score": no_answer_score,
    }


@keras.saving.register_keras_serializable(package="keras_act")
class AlbertActQuestionAnswererPreprocessor(Preprocessor):
    """Preprocessor of `AlbertActQuestionAnswerer` (SQuAD-style extractive QA).

    `x` is a tuple `(questions, contexts)` of strings or batches of strings.
    They are packed as `[CLS] question [SEP] context [SEP]` (segment ids 0
    then 1), padded with `<pad>`: the question is cut to
    `max_question_length` pieces, the context to what is left of
    `sequence_length` (no document stride: a context longer than the window
    is truncated).

    The context is split on whitespace (as Python's `str.split()`) and each
    word tokenized on its own
    (SentencePiece never makes a piece across whitespace), which maps
    character spans to token spans as BERT's and ALBERT's SQuAD scripts do.
    `y`, when given, is a dict of `answer_start` (the character offset of
    the answer in the context, as in SQuAD; -1 for no answer) and
    `answer_text`; it becomes int32 `[batch, 2]` token positions `(start,
    end)`, both inclusive, of the first and last pieces of the words the
    answer overlaps. Answers that are absent or fall outside the window
    point at `[CLS]` (`(0, 0)`), as in SQuAD 2.0.

    Args:
        tokenizer: an `AlbertActTokenizer`.
        sequence_length: int, the packed length (at least 5). Defaults to
            384.
        max_question_length: int, the most pieces kept of a question.
            Defaults to 64.
        **kwargs: arguments of `keras.layers.Layer` (e.g. `name`).

    Returns:
        `x` as a dict of int32 `token_ids`, `segment_ids`, `padding_mask`
        `[batch, sequence_length]`, followed by `y` `[batch, 2]` and
        `sample_weight` when given.

    Example:

    >>> import io, keras_act, sentencepiece as spm; proto = io.BytesIO()
    >>> spm.SentencePieceTrainer.train(sentence_iterator=iter(["the fox ran far away.", "a cat sat on a mat."] * 20), model_writer=proto, vocab_size=24, pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, control_symbols=["[CLS]", "[SEP]", "[MASK]"], minloglevel=2)
    >>> tokenizer = keras_act.AlbertActTokenizer(proto=proto.getvalue())
    >>> qa_inputs = keras_act.AlbertActQuestionAnswererPreprocessor(
    ...     tokenizer, sequence_length=16, max_question_length=4)
    >>> x, y = qa_inputs(
    ...     x=(["who sat?"], ["a cat sat on a mat."]),
    ...     y={"answer_start": [0], "answer_text": ["a cat"]})
    >>> x["token_ids"].numpy().tolist(), y.numpy().tolist()
    ([[2, 5, 15, 20, 11, 3, 8, 5, 16, 7, 5, 17, 7, 5, 11, 3]], [[6, 9]])

    `decode_answers` turns the answerer's span logits back into words: here
    logits that favour the span 6..9.

    >>> import numpy as np
    >>> span_logits = np.zeros((1, 16, 2)); span_logits[0, 6, 0] = span_logits[0, 9, 1] = 5
    >>> qa_inputs.decode_answers((["who sat?"], ["a cat sat on a mat."]), span_logits)
    ['a cat']
    """

    backbone_cls = AlbertActBackbone
    tokenizer_cls = AlbertActTokenizer

    def __init__(self, tokenizer, sequence_length=384, max_question_length=64, **kwargs):
        super().__init__(**kwargs)
        check_tokenizer(self, tokenizer)
        check_sequence_length(self, sequence_length, 5)
        check_positive_int("max_question_length", max_question_length)
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.max_question_length = max_question_length
        self.built = True

    def __call__(self, *args, **kwargs):
        if is_two_part_x(args, lambda second: not isinstance(second, dict)):
            # `preprocessor((questions, contexts))`: the tuple is `x`, not
            # `(x, y)` (`y` is a dict).
            return super().__call__(x=args[0], **kwargs)
        return super().__call__(*args, **kwargs)

    def _inputs(self, x):
        questions, contexts = check_two_part_x(self, x, "questions", "contexts")
        questions, contexts = _strings(questions, "questions"), _strings(contexts, "contexts")
        single = questions.shape.rank == 0
        if single:
            questions, contexts = questions[tf.newaxis], contexts[tf.newaxis]
        return questions, contexts, single

    def _layout(self, questions, contexts, answers=None):
        """Tokenizes and lays out the window; all `[batch, ...]` tensors.

        Questions, context words and answers are tokenized in one call (one
        copy of the tokenizer's graph in a `tf.data` pipeline).
        """
        words, word_starts, word_ends = split_words(contexts)
        parts = [questions, words.flat_values] + ([answers] if answers is not None else [])
        ids = self.tokenizer(tf.concat(parts, axis=0)).with_row_splits_dtype(tf.int64)
        batch = tf.shape(questions, out_type=tf.int64)[0]
        total_words = tf.shape(words.flat_values, out_type=tf.int64)[0]
        # At least one context piece fits in the window.
        longest_question = min(self.max_question_length, self.sequence_length - 4)
        question_ids = ids[:batch][:, :longest_question]
        pieces = words.with_row_splits_dtype(tf.int64).with_flat_values(
            ids[batch : batch + total_words]
        )  # [batch, words, pieces]
        answer_ids = ids[batch + total_words :] if answers is not None else None
        room = self.sequence_length - 3 - question_ids.row_lengths()
        context_ids = pieces.merge_dims(1, 2)
        # Keep `room` context pieces per example.
        keep = tf.ragged.range(context_ids.row_lengths()) < room[:, tf.newaxis]
        context_ids = tf.ragged.boolean_mask(context_ids, keep)
        return {
            "question_ids": question_ids,
            "context_ids": context_ids,
            "pieces_per_word": pieces.row_lengths(axis=2),  # [batch, words]
            "word_starts": word_starts,
            "word_ends": word_ends,
            "context_offset": question_ids.row_lengths() + 2,
            "answer_ids": answer_ids,
        }

    @preprocessing_outputs
    def call(self, x, y=None, sample_weight=None):
        with tf.device("cpu"):
            questions, contexts, single = self._inputs(x)
            answers = None
            if y is not None:
                self._check_y(y)
                answers = tf.reshape(_strings(y["answer_text"], "answer_text"), [-1])
            layout = self._layout(questions, contexts, answers)
            features = self._features(layout)
            if y is not None:
                y = self._token_span(contexts, layout, y, features["token_ids"])
            if single:
                features = {k: v[0] for k, v in features.items()}
                y = None if y is None else y[0]
        return keras.utils.pack_x_y_sample_weight(features, y, sample_weight)

    @preprocessing_outputs
    def features_and_layout(self, questions, contexts):
        """The features of a batch and the layout that maps their tokens back
        to the contexts' words, tokenized once (what a serving signature
        needs to cut answers out of the contexts).

        Args:
            questions: a string tensor `[batch]`.
            contexts: a string tensor `[batch]`.

        Returns:
            A tuple of the features dict and a dict of `context_ids` (the
            kept context pieces), `pieces_per_word`, `word_starts`,
            `word_ends` (byte offsets; all ragged `[batch, None]`) and
            `context_offset` (int64 `[batch]`, the first context position).
        """
        with tf.device("cpu"):
            layout = self._layout(questions, contexts)
            return self._features(layout), layout

    def _features(self, layout):
        """`[CLS] question [SEP] context [SEP]`, padded: the model inputs."""
        tokenizer = self.tokenizer
        question_ids, context_ids = layout["question_ids"], layout["context_ids"]
        batch = question_ids.nrows()
        column = lambda value: tf.fill([batch, 1], tf.cast(value, tf.int32))  # noqa: E731
        ids = tf.concat(
            [
                column(tokenizer.cls_token_id),
                tf.cast(question_ids, tf.int32),
                column(tokenizer.sep_token_id),
                tf.cast(context_ids, tf.int32),
                column(tokenizer.sep_token_id),
            ],
            axis=1,
        )
        segments = tf.concat(
            [
                tf.zeros_like(column(0)),
                tf.zeros_like(tf.cast(question_ids, tf.int32)),
                tf.zeros_like(column(0)),
                tf.ones_like(tf.cast(context_ids, tf.int32)),
                tf.ones_like(column(0)),
            ],
            axis=1,
        )
        shape = [None, self.sequence_length]
        return {
            "token_ids": ids.to_tensor(default_value=tokenizer.pad_token_id, shape=shape),
            "segment_ids": segments.to_tensor(default_value=0, shape=shape),
            "padding_mask": tf.ones_like(ids).to_tensor(default_value=0, shape=shape),
        }

    def _check_y(self, y):
        if not isinstance(y, dict) or set(y) != {"answer_start", "answer_text"}:
            raise ValueError(
                f"{type(self).__name__} takes `y` as a dict of `answer_start` (character "
                f"offsets) and `answer_text`. Received: {y!r}"
            )

    def _token_span(self, contexts, layout, y, token_ids):
        answer_start = tf.reshape(tf.cast(y["answer_start"], tf.int32), [-1])
        answer_text = tf.reshape(_strings(y["answer_text"], "answer_text"), [-1])
        # Character offsets to byte offsets (the whitespace tokenizer's).
        has_answer = answer_start >= 0
        prefix = tf.strings.substr(
            contexts, tf.zeros_like(answer_start), tf.maximum(answer_start, 0), unit="UTF8_CHAR"
        )
        starts, ends = layout["word_starts"], layout["word_ends"]
        start_byte = tf.cast(tf.strings.length(prefix), starts.dtype)
        end_byte = start_byte + tf.cast(tf.strings.length(answer_text), starts.dtype)
        overlaps = tf.logical_and(
            starts < end_byte[:, tf.newaxis], ends > start_byte[:, tf.newaxis]
        ).to_tensor(default_value=False)
        has_answer = tf.logical_and(has_answer, tf.reduce_any(overlaps, axis=1))
        first_word = tf.argmax(tf.cast(overlaps, tf.int32), axis=1, output_type=tf.int32)
        words = tf.shape(overlaps)[1]
        last_word = (
            words
            - 1
            - tf.argmax(
                tf.cast(tf.reverse(overlaps, axis=[1]), tf.int32), axis=1, output_type=tf.int32
            )
        )
        counts = tf.cast(layout["pieces_per_word"].to_tensor(0), tf.int32)
        word_offsets = tf.cumsum(counts, axis=1, exclusive=True)
        base = tf.cast(layout["context_offset"], tf.int32)
        rows = tf.range(tf.shape(counts)[0])
        gather = lambda table, index: tf.gather_nd(table, tf.stack([rows, index], 1))  # noqa: E731
        start = base + gather(word_offsets, first_word)
        end = base + gather(word_offsets, last_word) + gather(counts, last_word) - 1
        # An answer cut off by the window (or a word with no pieces).
        context_end = base + tf.cast(layout["context_ids"].row_lengths(), tf.int32)
        inside = tf.logical_and(end < context_end, start <= end)
        valid = tf.logical_and(has_answer, inside)
        start, end = self._tighten(token_ids, start, end, layout["answer_ids"])
        span = tf.stack([start, end], axis=1)
        return tf.where(valid[:, tf.newaxis], span, tf.zeros_like(span))

    def _tighten(self, token_ids, start, end, answer):
        """Narrows word-level spans to the pieces of the answer text itself.

        `"Reykjavik,"` is one word of the context, but the answer
        `"Reykjavik"` is only its first piece: as BERT's SQuAD script, the
        first run of the answer's own pieces inside the span is taken, when
        there is one.
        """
        answer = tf.cast(answer, tf.int32)
        answer_length = tf.cast(answer.row_lengths(), tf.int32)
        width = tf.maximum(tf.reduce_max(answer_length), 1)
        answer = answer.to_tensor(default_value=-1, shape=[None, None])
        answer = tf.pad(answer, [[0, 0], [0, width - tf.shape(answer)[1]]], constant_values=-1)
        windows = tf.signal.frame(token_ids, width, 1, pad_end=True, pad_value=-2)
        in_answer = tf.range(width)[tf.newaxis, :] < answer_length[:, tf.newaxis]
        matches = tf.logical_or(
            tf.equal(windows, answer[:, tf.newaxis, :]), tf.logical_not(in_answer)[:, tf.newaxis, :]
        )
        positions = tf.range(tf.shape(token_ids)[1])[tf.newaxis, :]
        found = tf.logical_and(
            tf.reduce_all(matches, axis=2),
            tf.logical_and(
                positions >= start[:, tf.newaxis],
                positions + answer_length[:, tf.newaxis] - 1 <= end[:, tf.newaxis],
            ),
        )
        found = tf.logical_and(found, (answer_length > 0)[:, tf.newaxis])
        any_found = tf.reduce_any(found, axis=1)
        first = tf.argmax(tf.cast(found, tf.int32), axis=1, output_type=tf.int32)
        return (
            tf.where(any_found, first, start),
            tf.where(any_found, first + answer_length - 1, end),
        )

    def decode_answers(self, x, span_logits, max_answer_length=30):
        """Turns predicted span logits into answer strings (eagerly).

        The best span `start <= end` of at most `max_answer_length` pieces
        inside the context part of the window is taken (scored by the sum
        of its start and end logits), and the context text from its first to
        its last word is returned (whole words, original spelling).

        Args:
            x: the `(questions, contexts)` the logits were predicted for.
            span_logits: `[batch, sequence_length, 2]` (or `[sequence_length,
                2]` for one example), the `AlbertActQuestionAnswerer`
                output.
            max_answer_length: int, the longest answer in pieces.

        Returns:
            A list of strings (a string for one example).
        """
        questions, contexts, single = self._inputs(x)
        features, layout = self.features_and_layout(questions, contexts)
        logits = np.asarray(keras.ops.convert_to_numpy(span_logits), dtype="float64")
        if single:
            logits = logits[np.newaxis]
        spans = best_answer_spans(
            tf.constant(logits), features["segment_ids"], features["padding_mask"], max_answer_length
        )
        texts = self.answer_texts(contexts, layout, spans["answer_start"], spans["answer_end"])
        answers = [text.decode("utf-8", errors="replace") for text in texts.numpy()]
        return answers[0] if single else answers

    def answer_texts(self, contexts, layout, answer_start, answer_end):
        """The context text of token spans, from the first to the last word
        they touch (whole words, original spelling), in the graph.

        Args:
            contexts: the string tensor `[batch]` of the contexts.
            layout: the layout of `features_and_layout`.
            answer_start: int32 `[batch]`, the first token of each span (0,
                the `[CLS]` span: no answer).
            answer_end: int32 `[batch]`, the last token (inclusive).

        Returns:
            A string tensor `[batch]` (`""` for no answer).
        """
        batch = tf.shape(contexts)[0]
        words = tf.cast(layout["word_starts"].bounding_shape(axis=1), tf.int32)
        shape = tf.stack([batch, words + 1])  # one spare column: a context of no words
        last_piece = tf.cumsum(layout["pieces_per_word"].to_tensor(shape=shape), axis=1)
        word_starts = layout["word_starts"].to_tensor(shape=shape)
        word_ends = layout["word_ends"].to_tensor(shape=shape)
        base = tf.cast(layout["context_offset"], tf.int32)

        def word_at(position):
            piece = tf.cast(position - base, last_piece.dtype)[:, tf.newaxis]
            word = tf.searchsorted(last_piece, piece, side="right", out_type=tf.int32)
            return tf.minimum(word[:, 0], words)

        starts = tf.gather(word_starts, word_at(answer_start), batch_dims=1)
        ends = tf.gather(word_ends, word_at(answer_end), batch_dims=1)
        has_span = answer_start > 0
        return tf.strings.substr(
            contexts, tf.where(has_span, starts, 0), tf.where(has_span, ends - starts, 0)
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "max_question_length": self.max_question_length,
            }
        )
        return config
