"""Sentence-order prediction (SOP) pairs, as ALBERT's `create_pretraining_data`.

Documents are tokenized sentence by sentence, then cut into pairs of
segments: sentences are accumulated up to a target length, split at a random
sentence boundary and swapped half of the time (label 1 when swapped). The
pairs are a pure function of `seed`. NumPy only, apart from
`tokenize_documents`, which calls an in-graph tokenizer.
"""

import numpy as np


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
    import tensorflow as tf  # the tokenizer is a TensorFlow layer

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
    """Truncates the longer of two lists, one token at a time, from a random end.

    Args:
        tokens_a, tokens_b: sequences of token ids.
        max_num_tokens: int, the most tokens the two may hold together.
        rng: a `numpy.random.Generator`.

    Returns:
        A tuple of two lists.

    Example:

    >>> import numpy as np
    >>> truncate_pair([1, 2, 3, 4], [5, 6], 4, np.random.default_rng(0))
    ([2, 3], [5, 6])
    """
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

    Example:

    >>> import numpy as np
    >>> document = [np.arange(5, 9), np.arange(9, 12), np.arange(12, 15)]
    >>> tokens_a, tokens_b, labels = create_sop_instances([document], 16, seed=0)
    >>> tokens_a[0].tolist(), tokens_b[0].tolist(), labels.tolist()  # swapped
    ([12, 13, 14], [5, 6, 7, 8, 9, 10, 11], [1])
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
