"""`MaskedLMHead`: serves an `AlbertActPretrainer`'s fills of each `[MASK]`."""

import tensorflow as tf

from keras_act.checks import check_int_in_range
from keras_act.export.heads.base import ServingHead, vocabulary_table


class MaskedLMHead(ServingHead):
    """Serves an `AlbertActPretrainer`: the top-k fills of each `[MASK]`.

    The `[MASK]` tokens of the (tokenized) input are found in the graph; the
    masked-LM head reads them and returns the `top_k` most probable tokens of
    each. A text without `[MASK]` gives empty fills (`P = 0`); in a batch,
    rows with fewer masks than the longest are padded with `-1` positions and
    ids, `""` pieces and `0` scores. A `[MASK]` cut off by truncation is not
    predicted.

    Returns:
        A dict of `mask_positions` int32 `[batch, P]` (the index of each
        `[MASK]` in the sequence, `-1` for padding), `top_k_ids` int32
        `[batch, P, top_k]`, `top_k_pieces` string `[batch, P, top_k]`,
        `top_k_scores` float32 `[batch, P, top_k]` (softmax probabilities,
        best first) and `updates` float32 `[batch, seq]`.

    Example:

    ```python
    head = MaskedLMHead(pretrainer, tokenizer, top_k=3)
    head(preprocessor(["The capital of France is [MASK]."]))["top_k_pieces"]
    ```
    """

    warmup_texts = (
        "[MASK] is the capital of France.",
        "The [MASK] sat on the [MASK].",
        "No mask in this one.",
    )

    def __init__(self, model, tokenizer, top_k=5):
        super().__init__(model, tokenizer, top_k=top_k)
        vocabulary_size = model.backbone.vocabulary_size
        check_int_in_range("top_k", top_k, 1, vocabulary_size, high_is="the vocabulary")
        self.mask_token_id = tokenizer.mask_token_id
        self.pieces = vocabulary_table(tokenizer, vocabulary_size)

    def __call__(self, features):
        token_ids = features["token_ids"]
        is_mask = tf.logical_and(
            tf.equal(token_ids, self.mask_token_id), tf.not_equal(features["padding_mask"], 0)
        )
        indices = tf.broadcast_to(tf.range(tf.shape(token_ids)[1]), tf.shape(token_ids))
        mask_positions = tf.ragged.boolean_mask(indices, is_mask).to_tensor(default_value=-1)
        is_real = mask_positions >= 0
        # keras-hub's MaskedLMHead gathers with `take_along_axis`, which fails
        # on a batch of 0 rows (GatherV2): an empty batch runs on one row of
        # `<pad>` tokens instead, whose outputs are dropped.
        batch = tf.shape(token_ids)[0]
        extra = tf.cast(tf.equal(batch, 0), tf.int32)

        def padded(value, fill=0):
            return tf.pad(value, [[0, extra], [0, 0]], constant_values=fill)

        outputs = self.model(
            {
                "token_ids": padded(token_ids),
                "segment_ids": padded(features["segment_ids"]),
                "padding_mask": padded(features["padding_mask"], fill=1),
                "mask_positions": padded(tf.maximum(mask_positions, 0)),
            },
            training=False,
        )
        outputs = {name: outputs[name][:batch] for name in ("mlm_logits", "updates")}
        scores = tf.nn.softmax(tf.cast(outputs["mlm_logits"], "float32"), axis=-1)
        top_scores, top_ids = tf.math.top_k(scores, k=self.top_k)
        real = tf.broadcast_to(is_real[..., tf.newaxis], tf.shape(top_ids))
        return {
            "mask_positions": mask_positions,
            "top_k_ids": tf.where(real, top_ids, -1),
            "top_k_pieces": tf.where(real, tf.gather(self.pieces, top_ids), ""),
            "top_k_scores": tf.where(real, top_scores, 0.0),
            "updates": outputs["updates"],
        }
