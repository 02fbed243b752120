"""The pre-training input pipeline: SOP pairs packed and masked by `tf.data`.

SOP pairs (`keras_act.data.sentence_order`) are packed as
`[CLS] A [SEP] B [SEP]` to a fixed `sequence_length` and masked anew at every
epoch (`keras_act.data.masking`), so every shape is static (TPUs, XLA).
Everything random is a pure function of `seed` (and of the epoch and the
example's index for masking), so a run can be resumed at any batch.
"""

import tensorflow as tf

from keras_act.data.masking import mask_example

FEATURE_KEYS = ("token_ids", "segment_ids", "padding_mask", "mask_positions")
LABEL_KEYS = ("mask_ids", "mask_weights", "sop_label")


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
