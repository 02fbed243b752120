"""`RegressorHead`: serves an `AlbertActTextRegressor`'s score."""

import tensorflow as tf

from keras_act.export.heads.base import LogitsHead


class RegressorHead(LogitsHead):
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

    def __call__(self, features):
        outputs = self.logits_and_updates(features)
        return {
            "score": tf.reshape(tf.cast(outputs["logits"], tf.float32), [-1]),
            "updates": outputs["updates"],
        }
