"""Depth pictures and tables as TensorBoard summaries, e.g. during pre-training."""

import numpy as np
import tensorflow as tf

from keras_act.analysis.depth_readers import KerasDepthReader
from keras_act.analysis.plots import (
    plot_category_histograms,
    plot_depth_heatmap,
    save_figure,
)
from keras_act.analysis.report import category_table_markdown
from keras_act.analysis.sentence_depth import depth_table_markdown, sentence_depths
from keras_act.analysis.statistics import DepthStatistics

# The depth reader of the last backbone seen: its traced function is reused at
# every summary step (one entry, so that at most one old model is kept alive).
_LAST_DEPTH_READER = {}


def _depth_reader(backbone, tokenizer):
    key = (id(backbone), id(tokenizer))
    if key not in _LAST_DEPTH_READER:
        _LAST_DEPTH_READER.clear()
        _LAST_DEPTH_READER[key] = KerasDepthReader(backbone, tokenizer)
    return _LAST_DEPTH_READER[key]


def _image(figure):
    """A `[1, height, width, 4]` uint8 tensor of a figure's PNG."""
    return tf.image.decode_png(save_figure(figure), channels=4)[tf.newaxis]


def write_depth_summaries(
    writer, backbone, tokenizer, sentences, step, examples=None, prefix="depth"
):
    """Writes depth image and text summaries of a backbone to TensorBoard.

    Writes, at `step`:
    - `{prefix}/heatmap` (image): the updates of each token of `sentences`;
    - `{prefix}/tokens` (text): their per-token tables;
    - `{prefix}/updates` (histogram): the updates of their tokens;
    - with `examples`, `{prefix}/categories` (image) and
      `{prefix}/category_means` (text): the histogram and mean of the
      updates per category of the paper, on that batch of masked
      pre-training examples.

    Args:
        writer: a `tf.summary` writer.
        backbone: an `AlbertActBackbone`.
        tokenizer: its `AlbertActTokenizer`.
        sentences: a list of str (a few short sentences).
        step: int, the summary step.
        examples: optional `(features, targets)` batch of pre-training
            examples (`keras_act.data.pretraining_dataset.pretraining_dataset`,
            batched).
        prefix: str, the summary name prefix. Defaults to `"depth"`.

    Returns:
        The list of `SentenceDepth` of `sentences`.

    Example:

    ```python
    writer = tf.summary.create_file_writer("runs/x/logs")
    batch = next(iter(pretraining_dataset(...).take(32).batch(32)))
    write_depth_summaries(writer, backbone, tokenizer, ["The cat sat."], step, examples=batch)
    ```
    """
    depths = sentence_depths(_depth_reader(backbone, tokenizer), list(sentences))
    max_layers = int(backbone.max_layers)
    with writer.as_default(step=step):
        if depths:
            figure = plot_depth_heatmap(depths, max_layers=max_layers, title=f"Updates per token, step {step}")
            tf.summary.image(f"{prefix}/heatmap", _image(figure))
            tf.summary.text(f"{prefix}/tokens", "\n\n".join(depth_table_markdown(d) for d in depths))
            tf.summary.histogram(f"{prefix}/updates", np.concatenate([d.updates for d in depths]))
        if examples is not None:
            features, targets = examples
            features = {k: np.asarray(v) for k, v in features.items()}
            targets = {k: np.asarray(v) for k, v in targets.items()}
            outputs = backbone(
                {k: features[k] for k in ("token_ids", "segment_ids", "padding_mask")},
                training=False,
            )
            statistics = DepthStatistics(
                cls_token_id=tokenizer.cls_token_id,
                sep_token_id=tokenizer.sep_token_id,
                mask_token_id=tokenizer.mask_token_id,
            )
            statistics.update(features, targets, np.asarray(outputs["updates"]))
            figure = plot_category_histograms(statistics, title=f"Updates per category, step {step}")
            tf.summary.image(f"{prefix}/categories", _image(figure))
            tf.summary.text(f"{prefix}/category_means", category_table_markdown(statistics))
    writer.flush()
    return depths
