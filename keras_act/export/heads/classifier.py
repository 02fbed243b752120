"""`ClassifierHead`: serves any model whose output is logits `[batch, classes]`."""

import tensorflow as tf

from keras_act.export.heads.base import LogitsHead, is_classifier, output_spec


class ClassifierHead(LogitsHead):
    """Serves a classifier: any model whose output is logits `[batch, classes]`.

    The model takes the features dict and returns logits (a tensor, or a dict
    with `"logits"`). Per-token `updates` are read without running the
    backbone twice where the model allows it (`logits_and_updates_function`).

    Returns:
        A dict of float32 `logits` `[batch, num_classes]`, `probabilities`
        (softmax; sigmoid when `num_classes` is 1), int32 `label` `[batch]`
        (argmax; `logit > 0` when `num_classes` is 1) and `updates`.

    Example:

    ```python
    head = ClassifierHead(classifier, tokenizer)
    head(preprocessor(["great movie"]))["label"]
    ```
    """

    def __init__(self, model, tokenizer, top_k=5):
        if not is_classifier(model):
            raise ValueError(
                "ClassifierHead serves models whose output is logits "
                f"[batch, num_classes]. Received {type(model).__name__} with outputs "
                f"{output_spec(model)}."
            )
        super().__init__(model, tokenizer, top_k=top_k)

    def __call__(self, features):
        outputs = self.logits_and_updates(features)
        logits = tf.cast(outputs["logits"], "float32")
        if logits.shape[-1] == 1:
            probabilities = tf.sigmoid(logits)
            label = tf.cast(logits[:, 0] > 0, "int32")
        else:
            probabilities = tf.nn.softmax(logits, axis=-1)
            label = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {
            "logits": logits,
            "probabilities": probabilities,
            "label": label,
            "updates": outputs["updates"],
        }
