"""Depth analysis: how many layers each token of ALBERT-ACT used, and why.

Simoulin & Crabbé (2021) read the per-token number of updates of ALBERT-ACT
by token category (masked-LM targets, `[CLS]`, `[SEP]`, ...). This package
gives, for a model and its tokenizer (or an exported SavedModel):

- `sentence_depths`: the pieces, ids, updates, remainders and halting
  probability of each token of a few sentences (`format_depth_table`);
- `corpus_depth_statistics`: a `DepthStatistics` over a corpus, MLM
  masking applied as in pre-training, by the paper's categories, by token
  frequency and by position, with histograms;
- `plot_depth_heatmap`, `plot_category_histograms`, `plot_depth_profiles`:
  PNG pictures; `write_statistics`: Markdown and JSON tables;
- `write_depth_summaries` (`keras_act.analysis.tensorboard`): the same as
  TensorBoard image and text summaries during pre-training;
- `python -m keras_act.analysis`: the command line.

Example:

```python
from keras_act import analysis

depth_reader = analysis.load_depth_reader("runs/pretrain/preset")
for depth in analysis.sentence_depths(depth_reader, ["The cat sat on the mat."]):
    print(analysis.format_depth_table(depth))
```
"""

# The `TYPE_CHECKING` imports below are read, not run: they name the public
# attributes (`__all__`), each imported from its module on first use
# (`keras_act.lazy_imports`), so importing the package imports none of them.
# ruff: noqa: F401

from typing import TYPE_CHECKING

from keras_act.lazy_imports import lazy_attributes

if TYPE_CHECKING:
    from keras_act.analysis.corpus import corpus_depth_statistics, masked_examples
    from keras_act.analysis.depth_readers import (
        DepthReader,
        KerasDepthReader,
        SavedModelDepthReader,
    )
    from keras_act.analysis.loading import load_depth_reader
    from keras_act.analysis.plots import (
        plot_category_histograms,
        plot_depth_heatmap,
        plot_depth_profiles,
        save_figure,
    )
    from keras_act.analysis.report import (
        PAPER_MEAN_UPDATES,
        statistics_json,
        statistics_markdown,
        write_statistics,
    )
    from keras_act.analysis.sentence_depth import (
        SentenceDepth,
        depth_table_markdown,
        format_depth_table,
        sentence_depths,
    )
    from keras_act.analysis.statistics import DepthStatistics
    from keras_act.analysis.tensorboard import write_depth_summaries

__getattr__, __dir__, __all__ = lazy_attributes(__name__, __file__)
