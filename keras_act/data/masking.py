"""Dynamic masked-LM masking of one packed example, in the graph.

15% of the tokens are chosen (optionally as n-gram spans, as ALBERT), 80%
replaced by `[MASK]`, 10% by a random token and 10% kept, with at most
`max_predictions` targets so that every shape is static (TPUs, XLA). The
choice is a pure function of a stateless seed, so masking can be redrawn at
every epoch and a run resumed at any batch.
"""

import tensorflow as tf


def _select_mask_positions(candidates, num_predictions, seed, max_ngram):
    """Chooses up to `num_predictions` candidate positions (n-gram spans)."""
    length = tf.shape(candidates)[0]
    scores = tf.random.stateless_uniform([length], seed=seed)
    scores = tf.where(candidates, scores, 2.0)
    starts = tf.argsort(scores, stable=True)
    if max_ngram > 1:
        # ALBERT's n-gram masking: span lengths n with probability ~ 1/n.
        weights = 1.0 / tf.range(1, max_ngram + 1, dtype=tf.float32)
        ngram = 1 + tf.random.stateless_categorical(
            tf.math.log(weights)[tf.newaxis],
            length,
            seed=seed + tf.constant([0, 1], seed.dtype),
            dtype=tf.int32,
        )[0]
    else:
        ngram = tf.ones([length], tf.int32)
    offsets = tf.range(max_ngram)
    spans = starts[:, tf.newaxis] + offsets[tf.newaxis, :]
    valid = (offsets[tf.newaxis, :] < ngram[:, tf.newaxis]) & (spans < length)
    valid &= tf.gather(candidates, tf.minimum(spans, length - 1))
    # A span whose start is not a candidate is dropped as a whole.
    valid &= tf.gather(candidates, starts)[:, tf.newaxis]
    positions, _ = tf.unique(tf.boolean_mask(spans, valid))
    positions = positions[:num_predictions]
    return tf.sort(positions)


def mask_example(
    token_ids,
    seed,
    vocabulary_size,
    max_predictions,
    mask_token_id,
    special_token_ids,
    first_normal_id,
    mask_probability=0.15,
    max_ngram=1,
):
    """Applies MLM masking to one packed example (graph ops, stateless).

    Args:
        token_ids: int32 `[seq]`, the packed tokens (padding is 0).
        seed: int32/int64 `[2]`, the stateless seed of this example.
        vocabulary_size: int.
        max_predictions: int, number of target slots (static).
        mask_token_id: int, id of `[MASK]`.
        special_token_ids: ints that are never masked (`[CLS]`, `[SEP]`, pad).
        first_normal_id: int, random replacements are drawn from
            `[first_normal_id, vocabulary_size)`.
        mask_probability: float, fraction of tokens to predict.
        max_ngram: int, longest masked span (1: single tokens).

    Returns:
        A tuple `(masked_token_ids, mask_positions, mask_ids, mask_weights)`.

    Example:

    >>> import tensorflow as tf
    >>> tokens = tf.constant([2, 10, 11, 12, 13, 14, 15, 16, 3, 0, 0, 0])
    >>> masked, positions, ids, weights = mask_example(
    ...     tokens, tf.constant([0, 7]), vocabulary_size=30, max_predictions=3,
    ...     mask_token_id=4, special_token_ids=(0, 2, 3), first_normal_id=5,
    ...     mask_probability=0.3)
    >>> weights.numpy().tolist()  # round(9 tokens * 0.3) = 3 targets
    [1.0, 1.0, 1.0]
    >>> bool(tf.reduce_all(tf.gather(tokens, positions) == ids))
    True
    """
    seed = tf.cast(seed, tf.int64)
    is_special = tf.reduce_any(
        tf.equal(token_ids[:, tf.newaxis], tf.constant(special_token_ids, tf.int32)), axis=1
    )
    candidates = tf.logical_not(is_special)
    num_tokens = tf.reduce_sum(tf.cast(token_ids != 0, tf.float32))
    num_predictions = tf.minimum(
        max_predictions,
        tf.maximum(1, tf.cast(tf.round(num_tokens * mask_probability), tf.int32)),
    )
    positions = _select_mask_positions(
        candidates, num_predictions, seed, max_ngram
    )
    count = tf.shape(positions)[0]
    originals = tf.gather(token_ids, positions)
    choice = tf.random.stateless_uniform([count], seed=seed + tf.constant([0, 2], tf.int64))
    random_ids = tf.random.stateless_uniform(
        [count],
        seed=seed + tf.constant([0, 3], tf.int64),
        minval=first_normal_id,
        maxval=vocabulary_size - 1,
        dtype=tf.int32,
    )
    # Never "replace" a token by itself: that would be the "original" case.
    random_ids += tf.cast((random_ids >= originals) & (originals >= first_normal_id), tf.int32)
    replacements = tf.where(
        choice < 0.8,
        tf.fill([count], mask_token_id),
        tf.where(choice < 0.9, originals, random_ids),
    )
    masked = tf.tensor_scatter_nd_update(token_ids, positions[:, tf.newaxis], replacements)
    pad = max_predictions - count
    mask_positions = tf.pad(positions, [[0, pad]])
    mask_ids = tf.pad(originals, [[0, pad]])
    mask_weights = tf.pad(tf.ones([count], tf.float32), [[0, pad]])
    return masked, mask_positions, mask_ids, mask_weights
