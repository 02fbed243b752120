"""GLUE readers (every task's TSV layout, TFDS) and metrics."""

import numpy as np
import pytest

from training import glue

# One header and one row of each task's GLUE TSV layout (CoLA has no header).
LAYOUTS = {
    "cola": (None, "gj04\t1\t\tThe sailors rode the breeze clear of the rocks."),
    "sst2": ("sentence\tlabel", "it 's a charming journey . \t1"),
    "mrpc": (
        "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String",
        "1\t702876\t702977\tAmrozi accused his brother .\tReferring to him , he accused .",
    ),
    "qqp": (
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
        "201359\t303345\t303346\tWhy are African-Americans so beautiful?\tWhy are hispanics so beautiful?\t0",
    ),
    "stsb": (
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
        "0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\tA man with a hard hat is dancing.\t"
        "A man wearing a hard hat is dancing.\t5.000",
    ),
    "mnli": (
        "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
        "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\t"
        "label4\tlabel5\tgold_label",
        "0\t63735\t63735n\tslate\t( ( The ...\t( ( The ...\t(ROOT ...\t(ROOT ...\t"
        "The new rights are nice enough\tEveryone really likes the newest benefits \t"
        "neutral\tentailment\tneutral\tneutral\tneutral\tneutral",
    ),
    "qnli": (
        "index\tquestion\tsentence\tlabel",
        "0\tWhat came into force after the new constitution?\tThe law came into force.\tentailment",
    ),
    "rte": (
        "index\tsentence1\tsentence2\tlabel",
        "0\tDana Reeve died at 44.\tChristopher Reeve had an accident.\tnot_entailment",
    ),
    "wnli": (
        "index\tsentence1\tsentence2\tlabel",
        "0\tI stuck a pin through a carrot.\tThe carrot had a hole.\t1",
    ),
}
EXPECTED = {
    "cola": (("The sailors rode the breeze clear of the rocks.",), 1),
    "sst2": (("it 's a charming journey . ",), 1),
    "mrpc": (("Amrozi accused his brother .", "Referring to him , he accused ."), 1),
    "qqp": (("Why are African-Americans so beautiful?", "Why are hispanics so beautiful?"), 0),
    "stsb": (("A man with a hard hat is dancing.", "A man wearing a hard hat is dancing."), 5.0),
    "mnli": (("The new rights are nice enough", "Everyone really likes the newest benefits "), 1),
    "qnli": (
        ("What came into force after the new constitution?", "The law came into force."),
        0,
    ),
    "rte": (("Dana Reeve died at 44.", "Christopher Reeve had an accident."), 1),
    "wnli": (("I stuck a pin through a carrot.", "The carrot had a hole."), 1),
}


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_reads_every_glue_layout(tmp_path, name):
    header, row = LAYOUTS[name]
    lines = ([header] if header else []) + [row, row]
    texts, labels = glue.read_glue_tsv(name, write(tmp_path / "dev.tsv", lines))
    expected_texts, expected_label = EXPECTED[name]
    assert texts == [expected_texts, expected_texts]
    np.testing.assert_allclose(labels, [expected_label] * 2)
    task = glue.get_task(name)
    assert labels.dtype == ("float32" if task.is_regression else "int32")
    assert task.num_classes == (1 if name == "stsb" else 3 if name == "mnli" else 2)
    texts, _ = glue.read_glue_tsv(name, tmp_path / "dev.tsv", max_examples=1)
    assert len(texts) == 1


def test_task_names_and_metrics():
    assert glue.get_task("SST-2").name == "sst2" and glue.get_task("STS-B").name == "stsb"
    assert glue.get_task("cola").metrics[0] == "matthews_corrcoef"
    assert glue.get_task("mrpc").metrics[0] == "f1" and glue.get_task("qqp").metrics[0] == "f1"
    assert glue.get_task("stsb").metrics == ("pearson", "spearman")
    with pytest.raises(ValueError, match="Unknown GLUE task 'squad'.*sst2"):
        glue.get_task("squad")


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        glue.read_glue_tsv("sst2", tmp_path / "missing.tsv")
    with pytest.raises(ValueError, match="empty"):
        glue.read_glue_tsv("sst2", write(tmp_path / "empty.tsv", [""]))
    with pytest.raises(ValueError, match="no sst2 examples"):
        glue.read_glue_tsv("sst2", write(tmp_path / "header.tsv", ["sentence\tlabel"]))
    with pytest.raises(ValueError, match="no cola examples"):
        glue.read_glue_tsv("cola", write(tmp_path / "blank.tsv", ["", "  "]))
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['sentence2'\]"):
        glue.read_glue_tsv(
            "rte", write(tmp_path / "rte.tsv", ["index\tsentence1\tlabel", "0\ta\t1"])
        )
    with pytest.raises(ValueError, match="line 3: unknown sst2 label '2'"):
        glue.read_glue_tsv(
            "sst2", write(tmp_path / "label.tsv", ["sentence\tlabel", "a\t1", "b\t2"])
        )
    with pytest.raises(ValueError, match="line 2: 2 column"):
        glue.read_glue_tsv("cola", write(tmp_path / "short.tsv", ["a\t1\t\tok", "a\t1"]))
    with pytest.raises(ValueError, match="not a number"):
        glue.read_glue_tsv(
            "stsb", write(tmp_path / "stsb.tsv", [LAYOUTS["stsb"][0], "\t".join(["x"] * 10)])
        )


def test_reads_the_real_sst2_and_cola_dev_files(shared_dir):
    texts, labels = glue.read_glue_tsv("sst2", shared_dir / "data/glue/SST-2/dev.tsv")
    assert len(texts) == 872 and int(labels.sum()) == 444
    assert texts[0] == ("it 's a charming and often affecting journey . ",)
    texts, labels = glue.read_glue_tsv("cola", shared_dir / "data/glue/CoLA/dev.tsv")
    assert len(texts) == 1043 and int(labels.sum()) == 721
    assert texts[0] == ("The sailors rode the breeze clear of the rocks.",)


def test_tfds_glue_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        texts, labels = glue.glue_examples_from_tfds("sst2", "train")
        assert len(texts) == 12 and all(len(t) == 1 and isinstance(t[0], str) for t in texts)
        assert set(labels.tolist()) <= {0, 1}
        texts, labels = glue.glue_examples_from_tfds("mnli", "validation_matched", max_examples=5)
        assert len(texts) == 5 and all(len(t) == 2 for t in texts)
        assert set(labels.tolist()) <= {0, 1, 2}
        _, scores = glue.glue_examples_from_tfds("stsb", "validation")
        assert scores.dtype == np.float32
        with pytest.raises(ValueError, match="has no feature"):
            glue.glue_examples_from_tfds("sst2", "train", name="glue/mrpc")


# === Metrics ===


def test_accuracy_and_f1_by_hand():
    labels = [1, 1, 0, 0, 1, 0]
    predictions = [1, 0, 0, 1, 1, 0]
    assert glue.accuracy(labels, predictions) == pytest.approx(4 / 6)
    # tp = 2, fp = 1, fn = 1: F1 = 2 * 2 / (3 + 3).
    assert glue.f1_score(labels, predictions) == pytest.approx(4 / 6)
    assert glue.f1_score([0, 0], [0, 0]) == 0.0
    with pytest.raises(ValueError, match="3 labels but 2 predictions"):
        glue.accuracy([0, 1, 1], [0, 1])


def test_matthews_corrcoef_by_hand():
    labels = [1, 1, 1, 0, 0, 1, 0, 1]
    predictions = [1, 0, 1, 0, 1, 1, 0, 1]
    # tp = 4, tn = 2, fp = 1, fn = 1.
    expected = (4 * 2 - 1 * 1) / np.sqrt((4 + 1) * (4 + 1) * (2 + 1) * (2 + 1))
    assert glue.matthews_corrcoef(labels, predictions) == pytest.approx(expected)
    assert glue.matthews_corrcoef([1, 0, 1], [1, 1, 1]) == 0.0  # undefined
    assert glue.matthews_corrcoef([1, 0], [0, 1]) == pytest.approx(-1.0)


def test_correlations_against_scipy():
    from scipy import stats  # a dev dependency (setup.py): the comparison always runs
    rng = np.random.default_rng(0)
    labels = np.round(rng.uniform(0, 5, size=50), 1)  # ties, as STS-B scores
    predictions = labels + rng.normal(scale=1.5, size=50)
    predictions[:5] = predictions[5]  # ties on the other side too
    assert glue.pearson_corrcoef(labels, predictions) == pytest.approx(
        stats.pearsonr(labels, predictions)[0], abs=1e-10
    )
    assert glue.spearman_corrcoef(labels, predictions) == pytest.approx(
        stats.spearmanr(labels, predictions)[0], abs=1e-10
    )


def test_correlations_by_hand():
    assert glue.pearson_corrcoef([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert glue.spearman_corrcoef([1, 2, 3, 4], [1, 8, 27, 64]) == pytest.approx(1.0)
    # Ranks with ties: [1, 2.5, 2.5, 4] against [1, 2, 3, 4].
    x = np.array([1, 2.5, 2.5, 4]) - 2.5
    y = np.array([1, 2, 3, 4]) - 2.5
    expected = (x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum())
    assert glue.spearman_corrcoef([0.1, 0.5, 0.5, 0.9], [1, 2, 3, 4]) == pytest.approx(expected)
    assert glue.pearson_corrcoef([1, 1, 1], [1, 2, 3]) == 0.0


def test_task_metrics_and_predictions():
    logits = np.array([[0.1, 0.9], [2.0, -1.0], [0.0, 0.5]])
    predictions = glue.predictions_from_outputs("cola", logits)
    assert predictions.tolist() == [1, 0, 1]
    scores = glue.task_metrics("cola", [1, 0, 0], predictions)
    assert list(scores) == ["matthews_corrcoef", "accuracy"]
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert list(glue.task_metrics("mrpc", [1, 0, 0], predictions)) == ["f1", "accuracy"]
    regression = glue.predictions_from_outputs("stsb", np.array([[1.5], [2.5]]))
    assert regression.tolist() == [1.5, 2.5]
    assert list(glue.task_metrics("stsb", [1.0, 3.0], regression)) == ["pearson", "spearman"]
