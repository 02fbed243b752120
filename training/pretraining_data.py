"""Pre-training examples: SOP sentence pairs and dynamic MLM masking.

Documents are tokenized, cut into sentence-order-prediction (SOP) pairs as
ALBERT's `create_pretraining_data` does (segments accumulated up to a target
length, split at a random sentence boundary, swapped half of the time), then
served by a `tf.data` pipeline that packs `[CLS] A [SEP] B [SEP]` to a fixed
`sequence_length` and masks tokens anew at every epoch (15%, 80% `[MASK]`,
10% random, 10% original; optional n-gram spans as ALBERT), with at most
`max_predictions` targets, so every shape is static (TPUs, XLA).

Everything random is a pure function of `seed` (and of the epoch and the
example's index for masking), so a run can be resumed at any batch.
"""

import numpy as np
import tensorflow as tf

FEATURE_KEYS = ("token_ids", "segment_ids", "padding_mask", "mask_positions")
LABEL_KEYS = ("mask_ids", "mask_weights", "sop_label")


def tokenize_documents(documents, tokenizer, batch_size=2048):
    """Tokenizes documents sentence by sentence with an in-graph tokenizer.

    Args:
        documents: list of documents, each a list of sentence strings.
        tokenizer: a tokenizer whose call on a batch of strings returns
            ragged token ids (e.g. `keras_act.AlbertActTokenizer`).
        batch_size: int, sentences per tokenizer call.

    Returns:
        A list of documents, each a list of int32 numpy arrays (sentences
        that tokenize to nothing are dropped).
    """
    sentences = [sentence for document in documents for sentence in document]
    ids = []
    for start in range(0, len(sentences), batch_size):
        ragged = tokenizer(tf.constant(sentences[start : start + batch_size]))
        ids.extend(np.asarray(row, dtype=np.int32) for row in ragged.to_list())
    result, offset = [], 0
    for document in documents:
        rows = [row for row in ids[offset : offset + len(document)] if len(row)]
        offset += len(document)
        if rows:
            result.append(rows)
    return result


def truncate_pair(tokens_a, tokens_b, max_num_tokens, rng):
    """Truncates the longer of two lists, one token at a time, from a random end."""
    tokens_a, tokens_b = list(tokens_a), list(tokens_b)
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()
    return tokens_a, tokens_b


def create_sop_instances(tokenized_documents, sequence_length, seed, short_seq_prob=0.1):
    """Cuts tokenized documents into SOP pairs, as ALBERT does.

    Args:
        tokenized_documents: list of documents, each a list of token-id
            arrays (one per sentence).
        sequence_length: int, packed length including `[CLS]` and two `[SEP]`.
        seed: int, random seed.
        short_seq_prob: float, probability of a shorter target length.

    Returns:
        A tuple `(tokens_a, tokens_b, labels)`: two lists of int32 arrays and
        an int32 array, label 1 where the two segments were swapped.

    Raises:
        ValueError: when no document yields a pair (every document a single
            one-token sentence, or an empty list).
    """
    rng = np.random.default_rng(seed)
    max_num_tokens = sequence_length - 3
    if max_num_tokens < 2:
        raise ValueError(f"`sequence_length` must be at least 5, got {sequence_length}.")
    tokens_a, tokens_b, labels = [], [], []
    for document in tokenized_documents:
        target = max_num_tokens
        if rng.random() < short_seq_prob:
            target = int(rng.integers(2, max_num_tokens + 1))
        chunk, length = [], 0
        for i, sentence in enumerate(document):
            chunk.append(sentence)
            length += len(sentence)
            if i != len(document) - 1 and length < target:
                continue
            if len(chunk) >= 2:
                a_end = int(rng.integers(1, len(chunk)))
                first = np.concatenate(chunk[:a_end])
                second = np.concatenate(chunk[a_end:])
            else:
                sentence = chunk[0]
                if len(sentence) < 2:
                    chunk, length = [], 0
                    continue
                split = int(rng.integers(1, len(sentence)))
                first, second = sentence[:split], sentence[split:]
            first, second = truncate_pair(first, second, max_num_tokens, rng)
            if first and second:
                swap = rng.random() < 0.5
                tokens_a.append(np.asarray(second if swap else first, np.int32))
                tokens_b.append(np.asarray(first if swap else second, np.int32))
                labels.append(int(swap))
            chunk, length = [], 0
            if rng.random() < short_seq_prob:
                target = int(rng.integers(2, max_num_tokens + 1))
            else:
                target = max_num_tokens
    if not labels:
        raise ValueError(
            "The corpus yields no sentence pair for pre-training (it needs "
            "sentences of at least two tokens)."
        )
    return tokens_a, tokens_b, np.asarray(labels, np.int32)


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


def pretraining_dataset(
    instances,
    sequence_length,
    max_predictions,
    vocabulary_size,
    seed,
    cls_token_id=2,
    sep_token_id=3,
    pad_token_id=0,
    mask_token_id=4,
    first_normal_id=5,
    mask_probability=0.15,
    max_ngram=1,
    shuffle=True,
):
    """An endless, deterministic `tf.data` pipeline of pre-training examples.

    Each epoch visits every SOP instance once, in an order drawn from
    `(seed, epoch)`, masked with a seed drawn from `(seed, epoch, index)`.

    Args:
        instances: `(tokens_a, tokens_b, labels)` from `create_sop_instances`.
        sequence_length: int, packed length.
        max_predictions: int, MLM target slots per example.
        vocabulary_size: int.
        seed: int.
        cls_token_id, sep_token_id, pad_token_id, mask_token_id: ints.
        first_normal_id: int, first id that is not a special token.
        mask_probability: float.
        max_ngram: int, 1 for token masking, 3 for ALBERT's n-gram masking.
        shuffle: bool, visit instances in a random order per epoch.

    Returns:
        A `tf.data.Dataset` of `(features, labels)` dicts, unbatched: features
        `token_ids`, `segment_ids`, `padding_mask` `[sequence_length]` and
        `mask_positions` `[max_predictions]`; labels `mask_ids`,
        `mask_weights` `[max_predictions]` and `sop_label` `[]`.
    """
    tokens_a, tokens_b, labels = instances
    if pad_token_id != 0:
        raise ValueError("Padding must be id 0 (ALBERT's `<pad>`).")
    too_long = [
        i for i, (a, b) in enumerate(zip(tokens_a, tokens_b, strict=True))
        if len(a) + len(b) + 3 > sequence_length
    ]
    if too_long:
        raise ValueError(
            f"{len(too_long)} instance(s) do not fit sequence_length={sequence_length}; "
            "create them with the same sequence_length."
        )
    num_instances = len(labels)
    segments_a = tf.ragged.constant(tokens_a, dtype=tf.int32, ragged_rank=1)
    segments_b = tf.ragged.constant(tokens_b, dtype=tf.int32, ragged_rank=1)
    sop_labels = tf.constant(labels, tf.int32)
    special = (cls_token_id, sep_token_id, pad_token_id)

    def example(epoch, index):
        a = segments_a[index]
        b = segments_b[index]
        tokens = tf.concat([[cls_token_id], a, [sep_token_id], b, [sep_token_id]], axis=0)
        segments = tf.concat(
            [tf.zeros([tf.shape(a)[0] + 2], tf.int32), tf.ones([tf.shape(b)[0] + 1], tf.int32)],
            axis=0,
        )
        length = tf.shape(tokens)[0]
        tokens = tf.pad(tokens, [[0, sequence_length - length]])
        segments = tf.pad(segments, [[0, sequence_length - length]])
        padding_mask = tf.cast(tf.range(sequence_length) < length, tf.int32)
        example_seed = tf.stack([tf.cast(seed, tf.int64), epoch * num_instances + index])
        masked, positions, mask_ids, mask_weights = mask_example(
            tokens,
            example_seed,
            vocabulary_size,
            max_predictions,
            mask_token_id,
            special,
            first_normal_id,
            mask_probability,
            max_ngram,
        )
        features = {
            "token_ids": tf.ensure_shape(masked, [sequence_length]),
            "segment_ids": tf.ensure_shape(segments, [sequence_length]),
            "padding_mask": tf.ensure_shape(padding_mask, [sequence_length]),
            "mask_positions": tf.ensure_shape(positions, [max_predictions]),
        }
        targets = {
            "mask_ids": tf.ensure_shape(mask_ids, [max_predictions]),
            "mask_weights": tf.ensure_shape(mask_weights, [max_predictions]),
            "sop_label": sop_labels[index],
        }
        return features, targets

    def epoch_dataset(epoch):
        order = tf.range(num_instances, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(
                order, seed=tf.stack([tf.cast(seed, tf.int64), epoch + 1])
            )
        return tf.data.Dataset.from_tensor_slices(order).map(
            lambda index: example(epoch, index)
        )

    return tf.data.Dataset.counter(dtype=tf.int64).flat_map(epoch_dataset)
