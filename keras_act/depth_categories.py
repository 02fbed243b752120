"""Token categories of the paper's depth table, as TensorFlow ops.

Simoulin & Crabbé (2021) report the mean number of updates for: all tokens,
unmasked tokens, masked tokens by what the input shows at the masked slot
(`[MASK]`, a random token, or the original token), `[CLS]` and `[SEP]`. Here:

- `all`: every real (non-padding) token;
- `unmasked`: real tokens that are not MLM targets, `[CLS]` and `[SEP]`
  excluded (they have their own rows);
- `mask_mask`, `mask_random`, `mask_original`: MLM targets whose input is
  `[MASK]`, another token, or the original token;
- `cls`, `sep`: the `[CLS]` and `[SEP]` tokens.
"""

import tensorflow as tf

DEPTH_CATEGORIES = (
    "all",
    "unmasked",
    "mask_mask",
    "mask_random",
    "mask_original",
    "cls",
    "sep",
)
# Row names of the paper's table.
CATEGORY_TITLES = {
    "all": "All tokens",
    "unmasked": "Unmasked tokens",
    "mask_mask": "[MASK]/[MASK]",
    "mask_random": "[MASK]/random",
    "mask_original": "[MASK]/original",
    "cls": "[CLS]",
    "sep": "[SEP]",
}


def depth_category_masks(
    token_ids,
    padding_mask,
    mask_positions=None,
    mask_ids=None,
    mask_weights=None,
    cls_token_id=2,
    sep_token_id=3,
    mask_token_id=4,
):
    """Boolean `[batch, seq]` masks of the paper's token categories.

    Args:
        token_ids: int `[batch, seq]`, the model's input (after masking).
        padding_mask: `[batch, seq]`, 1/true on real tokens.
        mask_positions: optional int `[batch, predictions]`, MLM target slots.
        mask_ids: optional int `[batch, predictions]`, original ids there.
        mask_weights: optional `[batch, predictions]`, 1 for used slots.
        cls_token_id, sep_token_id, mask_token_id: ints.

    Returns:
        A dict from each name of `DEPTH_CATEGORIES` to a bool tensor.
    """
    token_ids = tf.convert_to_tensor(token_ids)
    real = tf.cast(padding_mask, tf.bool)
    is_cls = real & tf.equal(token_ids, cls_token_id)
    is_sep = real & tf.equal(token_ids, sep_token_id)
    if mask_positions is None:
        masked = tf.zeros_like(real)
        original = tf.zeros_like(token_ids)
    else:
        mask_positions = tf.cast(mask_positions, tf.int32)
        weights = tf.cast(mask_weights, tf.float32) > 0
        shape = tf.shape(token_ids)
        batch_index = tf.broadcast_to(
            tf.range(shape[0])[:, tf.newaxis], tf.shape(mask_positions)
        )
        indices = tf.boolean_mask(tf.stack([batch_index, mask_positions], axis=-1), weights)
        masked = tf.scatter_nd(indices, tf.ones([tf.shape(indices)[0]], tf.bool), shape) & real
        original = tf.scatter_nd(
            indices, tf.boolean_mask(tf.cast(mask_ids, token_ids.dtype), weights), shape
        )
    shows_mask = tf.equal(token_ids, mask_token_id)
    shows_original = tf.equal(token_ids, original)
    return {
        "all": real,
        "unmasked": real & ~masked & ~is_cls & ~is_sep,
        "mask_mask": masked & shows_mask,
        "mask_random": masked & ~shows_mask & ~shows_original,
        "mask_original": masked & shows_original & ~shows_mask,
        "cls": is_cls,
        "sep": is_sep,
    }


def depth_category_sums(updates, masks):
    """Sum of `updates` and number of tokens per category.

    Args:
        updates: float `[batch, seq]`.
        masks: dict from `depth_category_masks`.

    Returns:
        A dict `{name: (sum_of_updates, count)}` of float32 scalars; the mean
        is `sum / count` (sums add up across batches and replicas).
    """
    updates = tf.cast(updates, tf.float32)
    sums = {}
    for name, mask in masks.items():
        weights = tf.cast(mask, tf.float32)
        sums[name] = (tf.reduce_sum(updates * weights), tf.reduce_sum(weights))
    return sums
