"""PNG pictures of the depth and their TensorBoard summaries."""

import glob

import numpy as np
import pytest
import tensorflow as tf
from matplotlib import colormaps
from matplotlib.image import imread

from keras_act.analysis import (
    SentenceDepth,
    plot_category_histograms,
    plot_depth_heatmap,
    plot_depth_profiles,
    save_figure,
    write_depth_summaries,
)
from keras_act.analysis.plots import COLORMAP, heatmap_figsize
from tests.helpers import ANALYSIS_SEQUENCE_LENGTH as SEQUENCE_LENGTH
from tests.helpers import ANALYSIS_TEXTS as TEXTS
from tests.helpers import analysis_setup, hand_built_statistics


def depth(updates, text="t"):
    updates = np.asarray(updates, np.float32)
    return SentenceDepth(
        text=text,
        pieces=[f"p{i}" for i in range(len(updates))],
        token_ids=np.arange(len(updates), dtype=np.int32),
        updates=updates,
    )


def read_png(path):
    image = imread(path)
    assert image.dtype == np.float32 and image.ndim == 3
    return image


def has_color(image, rgb, tolerance=0.02):
    """Whether some pixel of `image` has the color `rgb` (floats in [0, 1])."""
    distance = np.abs(image[..., :3] - np.asarray(rgb[:3], np.float32)).max(axis=-1)
    return bool((distance < tolerance).any())


def axes_pixels(figure, image, ax):
    """The part of `image` (the saved `figure`) inside the axes `ax`."""
    box = ax.get_window_extent()
    height = image.shape[0]
    return image[
        height - int(np.ceil(box.y1)) : height - int(np.floor(box.y0)),
        int(np.floor(box.x0)) : int(np.ceil(box.x1)),
    ]


def test_heatmap_png(tmp_path):
    depths = [depth([1, 6, 6, 2]), depth([3, 3])]
    path = tmp_path / "heatmap.png"
    figure = plot_depth_heatmap(depths, str(path), max_layers=6, figsize=(8, 3), dpi=50)
    image = read_png(path)
    assert image.shape[:2] == (150, 400)
    assert figure.get_size_inches().tolist() == [8, 3]
    cmap = colormaps[COLORMAP]
    # Cells are painted with the color scale 0..max_layers: 1, 6, 2 in the
    # first row, 3 in the second, and no other value of the scale.
    rows = [axes_pixels(figure, image, ax) for ax in figure.axes[:2]]
    for row, present, absent in ((rows[0], (1, 2, 6), (3, 4)), (rows[1], (3,), (1, 2, 4, 6))):
        for value in present:
            assert has_color(row, cmap(value / 6)), value
        for value in absent:
            assert not has_color(row, cmap(value / 6)), value
    # One row of cells per sentence, the pieces below each row.
    assert len(figure.axes) == 3  # two rows and the color bar
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["p0", "p1", "p2", "p3"]
    assert [t.get_text() for t in figure.axes[1].get_xticklabels()] == ["p0", "p1"]

    default = plot_depth_heatmap(depths, dpi=40)
    assert default.get_size_inches().tolist() == pytest.approx(list(heatmap_figsize(depths)))
    png = save_figure(default)
    decoded = tf.image.decode_png(png).numpy()
    width, height = heatmap_figsize(depths)
    assert decoded.shape[:2] == (round(height * 40), round(width * 40))
    with pytest.raises(ValueError, match="at least one"):
        plot_depth_heatmap([])


def test_category_histograms_and_profiles_png(tmp_path):
    statistics = hand_built_statistics()
    path = tmp_path / "histograms.png"
    figure = plot_category_histograms(
        statistics, str(path), paper_means={"all": 3.8}, figsize=(10, 5), dpi=40
    )
    image = read_png(path)
    assert image.shape[:2] == (200, 400)
    assert image[..., :3].std() > 0.05  # not a blank picture
    # Seven category panels and the panel of means; [CLS] has 2 tokens.
    assert len(figure.axes) == 8
    assert figure.axes[5].get_title() == "[CLS] (n=2)"
    heights = [patch.get_height() for patch in figure.axes[5].patches]
    assert heights == pytest.approx([0, 0, 0, 0, 0, 0.5, 0.5])

    path = tmp_path / "profiles.png"
    figure = plot_depth_profiles(statistics, str(path), figsize=(6, 2), dpi=50)
    assert read_png(path).shape[:2] == (100, 300)
    labels = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert labels == ["1-9", "10-99", "100-999", ">=1000"]


def test_tensorboard_summaries(tmp_path):
    setup = analysis_setup()
    from keras_act.data.pretraining_dataset import pretraining_dataset
    from keras_act.data.sentence_order import create_sop_instances, tokenize_documents
    from keras_act.data.text_corpus import read_documents

    documents = tokenize_documents(read_documents([setup.corpus])[:5], setup.tokenizer)
    instances = create_sop_instances(documents, SEQUENCE_LENGTH, seed=0)
    batch = next(
        iter(pretraining_dataset(instances, SEQUENCE_LENGTH, 5, 100, seed=0).batch(4))
    )
    writer = tf.summary.create_file_writer(str(tmp_path))
    depths = write_depth_summaries(
        writer, setup.backbone, setup.tokenizer, TEXTS[:2], step=7, examples=batch
    )
    write_depth_summaries(writer, setup.backbone, setup.tokenizer, TEXTS[:1], step=8)
    writer.close()

    values = {}
    for path in glob.glob(str(tmp_path / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                values.setdefault(value.tag, []).append((event.step, value))
    assert sorted(values) == [
        "depth/categories",
        "depth/category_means",
        "depth/heatmap",
        "depth/tokens",
        "depth/updates",
    ]
    assert [step for step, _ in values["depth/heatmap"]] == [7, 8]
    assert [step for step, _ in values["depth/categories"]] == [7]
    _, image = values["depth/heatmap"][0]
    tensor = tf.make_ndarray(image.tensor)  # [width, height, encoded PNG]
    width, height = heatmap_figsize(depths)
    assert [int(tensor[0]), int(tensor[1])] == [round(width * 100), round(height * 100)]
    png = tf.image.decode_png(tensor[2]).numpy()
    assert png.shape[:2] == (round(height * 100), round(width * 100))
    assert png[..., :3].std() > 10

    text = tf.make_ndarray(values["depth/tokens"][0][1].tensor).item().decode()
    for piece in depths[1].pieces:
        assert piece in text
    updates = depths[0].updates
    assert f"| 1 | `{depths[0].pieces[1]}` | {int(depths[0].token_ids[1])} | {updates[1]:g} |" in text
    means = tf.make_ndarray(values["depth/category_means"][0][1].tensor).item().decode()
    assert "| [CLS] | 4 |" in means and "| [SEP] | 8 |" in means
    _, image = values["depth/categories"][0]
    assert [int(v) for v in tf.make_ndarray(image.tensor)[:2]] == [1400, 600]
