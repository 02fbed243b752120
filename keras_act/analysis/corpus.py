"""Depth statistics over a corpus, on pre-training examples with MLM masking.

The paper's table is measured on masked-LM inputs. The corpus is therefore
turned into exactly the examples pre-training sees (`keras_act.data`:
SOP pairs `[CLS] A [SEP] B [SEP]`, 15% of the tokens masked, 80% `[MASK]`,
10% random, 10% original), visited once in order, and the model's `updates`
are aggregated by `DepthStatistics`.
"""

import numpy as np
import tensorflow as tf

from keras_act.analysis.sentence_depth import as_depth_reader
from keras_act.analysis.statistics import DEFAULT_FREQUENCY_EDGES, DepthStatistics


class EmptyCorpusError(ValueError):
    """The corpus gives no pre-training example."""


class _RaggedTokenizer:
    """Adapts `DepthReader.tokenize` to the tokenizer `tokenize_documents` calls."""

    def __init__(self, depth_reader):
        self.depth_reader = depth_reader

    def __call__(self, sentences):
        texts = [s.decode("utf-8") for s in sentences.numpy().tolist()]
        return tf.ragged.constant(self.depth_reader.tokenize(texts), dtype=tf.int32, ragged_rank=1)


def masked_examples(
    depth_reader,
    documents,
    sequence_length=128,
    max_predictions=None,
    seed=0,
    max_ngram=1,
    max_examples=None,
):
    """The pre-training examples of `documents`, each masked once.

    Args:
        depth_reader: a `DepthReader` (its tokenizer and special ids are used).
        documents: a list of documents, each a list of sentence strings
            (`keras_act.data.text_corpus.read_documents`).
        sequence_length: int, packed length. Defaults to 128.
        max_predictions: int, masked-LM targets per example. Defaults to
            15% of `sequence_length`, as `training.pretrain`.
        seed: int, the seed of the pairs and of the masking.
        max_ngram: int, longest masked span (1: token masking, as the demo
            pre-training; 3: ALBERT's n-gram masking).
        max_examples: optional int, stop after this many examples.

    Returns:
        A tuple `(dataset, token_frequencies)`: an unbatched `tf.data.Dataset`
        of `(features, targets)` (see `keras_act.data.pretraining_dataset`) over every
        SOP pair once, and the int64 count of each token id in the corpus.
    """
    from keras_act.data.pretraining_dataset import pretraining_dataset
    from keras_act.data.sentence_order import create_sop_instances, tokenize_documents

    if sequence_length > depth_reader.max_sequence_length:
        raise ValueError(
            f"`sequence_length`={sequence_length} exceeds the model's maximum "
            f"sequence length {depth_reader.max_sequence_length}."
        )
    max_predictions = max_predictions or max(1, int(round(sequence_length * 0.15)))
    tokenized = tokenize_documents(documents, _RaggedTokenizer(depth_reader), batch_size=256)
    if not tokenized:
        raise EmptyCorpusError("the corpus has no sentence with a token")
    ids = np.concatenate([sentence for document in tokenized for sentence in document])
    token_frequencies = np.bincount(ids, minlength=depth_reader.vocabulary_size)
    try:
        instances = create_sop_instances(tokenized, sequence_length, seed=seed)
    except ValueError as error:
        raise EmptyCorpusError(str(error)) from None
    count = len(instances[2])
    if max_examples is not None:
        count = min(count, int(max_examples))
    dataset = pretraining_dataset(
        instances,
        sequence_length,
        max_predictions,
        depth_reader.vocabulary_size,
        seed=seed,
        cls_token_id=depth_reader.cls_token_id,
        sep_token_id=depth_reader.sep_token_id,
        pad_token_id=depth_reader.pad_token_id,
        mask_token_id=depth_reader.mask_token_id,
        max_ngram=max_ngram,
        shuffle=False,
    ).take(count)
    # Exactly one example per SOP pair: say so (for progress reports).
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(count))
    return dataset, token_frequencies


def corpus_depth_statistics(
    model,
    documents,
    tokenizer=None,
    sequence_length=128,
    max_predictions=None,
    seed=0,
    max_ngram=1,
    batch_size=16,
    max_examples=None,
    frequency_edges=DEFAULT_FREQUENCY_EDGES,
    progress=None,
):
    """Depth statistics of a model over a corpus, MLM masking applied.

    Args:
        model: a `DepthReader`, or an `AlbertActBackbone` with its
            `tokenizer`.
        documents: a list of documents, each a list of sentence strings.
        tokenizer: the tokenizer of a backbone `model`.
        sequence_length, max_predictions, seed, max_ngram, max_examples:
            see `masked_examples`.
        batch_size: int, examples per model call.
        frequency_edges: lower edges of the frequency bands.
        progress: optional callable `progress(done, total)`, called after
            each batch with the number of examples analysed so far.

    Returns:
        A `DepthStatistics`.

    Example:

    ```python
    documents = read_documents(["heldout.txt"])
    statistics = corpus_depth_statistics(load_depth_reader("runs/x/preset"), documents)
    statistics.means()["mask_mask"]
    ```
    """
    depth_reader = as_depth_reader(model, tokenizer)
    dataset, token_frequencies = masked_examples(
        depth_reader,
        documents,
        sequence_length=sequence_length,
        max_predictions=max_predictions,
        seed=seed,
        max_ngram=max_ngram,
        max_examples=max_examples,
    )
    statistics = DepthStatistics(
        token_frequencies=token_frequencies,
        frequency_edges=frequency_edges,
        cls_token_id=depth_reader.cls_token_id,
        sep_token_id=depth_reader.sep_token_id,
        mask_token_id=depth_reader.mask_token_id,
        max_layers=depth_reader.max_layers,
    )
    total = int(dataset.cardinality())
    done = 0
    for features, targets in dataset.batch(batch_size).as_numpy_iterator():
        outputs = depth_reader.run(
            features["token_ids"], features["segment_ids"], features["padding_mask"]
        )
        statistics.update(features, targets, outputs["updates"])
        done += len(features["token_ids"])
        if progress is not None:
            progress(done, total)
    return statistics
