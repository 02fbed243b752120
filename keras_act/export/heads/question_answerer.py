"""`QuestionAnswererHead`: serves an `AlbertActQuestionAnswerer`'s answer spans."""

import tensorflow as tf

from keras_act.checks import check_positive_int
from keras_act.export.heads.base import LogitsHead
from keras_act.models.albert_act_question_answerer_preprocessor import best_answer_spans


class QuestionAnswererHead(LogitsHead):
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
        self.max_answer_length = check_positive_int("max_answer_length", max_answer_length)

    def __call__(self, features):
        outputs = self.logits_and_updates(features)
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
