"""`BackboneHead`: serves an `AlbertActBackbone`'s encodings and depth."""

from keras_act.export.heads.base import ServingHead


class BackboneHead(ServingHead):
    """Serves an `AlbertActBackbone`: its encodings and per-token depth.

    Returns:
        A dict of float32 `sequence_output` `[batch, seq, hidden_dim]`,
        `pooled_output` `[batch, hidden_dim]` and `updates` `[batch, seq]`.

    Example:

    ```python
    head = BackboneHead(backbone, tokenizer)
    head(preprocessor(["a text"]))["pooled_output"]
    ```
    """

    def __call__(self, features):
        outputs = self.model(features, training=False)
        return {
            "sequence_output": outputs["sequence_output"],
            "pooled_output": outputs["pooled_output"],
            "updates": outputs["updates"],
        }
