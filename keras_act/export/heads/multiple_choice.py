"""`MultipleChoiceHead`: serves an `AlbertActMultipleChoice`'s chosen answer."""

from keras_act.export.heads.base import LogitsHead
from keras_act.export.heads.classifier import ClassifierHead


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
        LogitsHead.__init__(self, model, tokenizer, top_k=top_k)
