"""GLUE: the tasks, their TSV files and TFDS datasets, and their metrics.

Readers for the standard GLUE TSV layouts of all nine tasks (as the GLUE
benchmark's `download_glue_data.py` leaves them), the same examples from
TensorFlow Datasets (`glue/<task>`), and the task metrics in numpy:
accuracy, Matthews correlation (CoLA), F1 (MRPC, QQP), Pearson and
Spearman correlations (STS-B).

Example:

    texts, labels = read_glue_tsv("sst2", "glue/SST-2/dev.tsv")
    scores = task_metrics("sst2", labels, predictions)  # {"accuracy": 0.91}
"""

import csv
import dataclasses
import os

import numpy as np


@dataclasses.dataclass(frozen=True)
class GlueTask:
    """What `training.finetune` needs to know about a GLUE task.

    Attributes:
        name: the task name (`"sst2"`).
        text_columns: the header names of the text columns (one or two).
        label_column: the header name of the label column.
        labels: the label strings in class order (`None` for regression);
            the class index of a label is its position, as in TFDS.
        metrics: the metric names, the first being the task's main metric.
        header: whether the TSV files start with a header row.
        positions: for files without a header, the column index of each
            text and of the label.
        tfds_texts: the text features of `glue/<name>` in TFDS.
        dev_split: the TFDS split of the dev set.
        dev_file: the usual name of the dev file in the GLUE folder.
    """

    name: str
    text_columns: tuple
    label_column: str
    labels: tuple | None
    metrics: tuple
    header: bool = True
    positions: tuple | None = None
    tfds_texts: tuple = ()
    dev_split: str = "validation"
    dev_file: str = "dev.tsv"

    @property
    def num_classes(self):
        """The number of classes; 1 for regression."""
        return 1 if self.labels is None else len(self.labels)

    @property
    def is_regression(self):
        return self.labels is None


GLUE_TASKS = {
    task.name: task
    for task in (
        GlueTask(
            "cola",
            ("sentence",),
            "label",
            ("0", "1"),
            ("matthews_corrcoef", "accuracy"),
            header=False,
            positions=((3,), 1),
            tfds_texts=("sentence",),
        ),
        GlueTask(
            "sst2", ("sentence",), "label", ("0", "1"), ("accuracy",), tfds_texts=("sentence",)
        ),
        GlueTask(
            "mrpc",
            ("#1 String", "#2 String"),
            "Quality",
            ("0", "1"),
            ("f1", "accuracy"),
            tfds_texts=("sentence1", "sentence2"),
        ),
        GlueTask(
            "qqp",
            ("question1", "question2"),
            "is_duplicate",
            ("0", "1"),
            ("f1", "accuracy"),
            tfds_texts=("question1", "question2"),
        ),
        GlueTask(
            "stsb",
            ("sentence1", "sentence2"),
            "score",
            None,
            ("pearson", "spearman"),
            tfds_texts=("sentence1", "sentence2"),
        ),
        GlueTask(
            "mnli",
            ("sentence1", "sentence2"),
            "gold_label",
            ("entailment", "neutral", "contradiction"),
            ("accuracy",),
            tfds_texts=("premise", "hypothesis"),
            dev_split="validation_matched",
            dev_file="dev_matched.tsv",
        ),
        GlueTask(
            "qnli",
            ("question", "sentence"),
            "label",
            ("entailment", "not_entailment"),
            ("accuracy",),
            tfds_texts=("question", "sentence"),
        ),
        GlueTask(
            "rte",
            ("sentence1", "sentence2"),
            "label",
            ("entailment", "not_entailment"),
            ("accuracy",),
            tfds_texts=("sentence1", "sentence2"),
        ),
        GlueTask(
            "wnli",
            ("sentence1", "sentence2"),
            "label",
            ("0", "1"),
            ("accuracy",),
            tfds_texts=("sentence1", "sentence2"),
        ),
    )
}
# Other spellings of the task names (the GLUE folder names).
_ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "mnli-m": "mnli"}


def get_task(name):
    """The `GlueTask` of a name (`"sst2"`, `"SST-2"`, `"cola"`, ...).

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    key = str(name).lower()
    key = _ALIASES.get(key, key)
    if key not in GLUE_TASKS:
        raise ValueError(f"Unknown GLUE task {name!r}; expected one of {', '.join(GLUE_TASKS)}.")
    return GLUE_TASKS[key]


def read_glue_tsv(task, path, max_examples=None):
    """Reads a GLUE TSV file of a task.

    Files with a header are read by column name (so MNLI's many parse
    columns and QQP's ids do not matter); CoLA's files have no header and
    are read by position (label column 2, sentence column 4). Quotes are
    not special (GLUE's files are not CSV-quoted).

    Args:
        task: a `GlueTask` or a task name.
        path: str, the TSV file.
        max_examples: int, read at most this many examples.

    Returns:
        `(texts, labels)`: a list of tuples of one or two strings, and a
        numpy array of int32 class indices (float32 scores for STS-B).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not UTF-8, has no examples, lacks a column,
            has a row with too few columns or an unknown label; the message
            names the file and line.
    """
    task = get_task(task) if isinstance(task, str) else task
    if not os.path.isfile(path):
        raise FileNotFoundError(f"GLUE {task.name} file not found: {path}")
    # `utf-8-sig`: GLUE's MRPC files start with a byte order mark.
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            rows = list(csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
    except UnicodeDecodeError as error:
        raise ValueError(_not_utf8(path, error)) from None
    rows = [(number, row) for number, row in enumerate(rows, 1) if any(c.strip() for c in row)]
    if task.header:
        if not rows:
            raise ValueError(f"{path} is empty: no header and no {task.name} examples.")
        _, header = rows.pop(0)
        header = [column.strip() for column in header]
        missing = [c for c in (*task.text_columns, task.label_column) if c not in header]
        if missing:
            raise ValueError(
                f"{path} is not a GLUE {task.name} file: its header {header} lacks the "
                f"column(s) {missing}."
            )
        text_index = tuple(header.index(c) for c in task.text_columns)
        label_index = header.index(task.label_column)
    else:
        text_index, label_index = task.positions
    if not rows:
        raise ValueError(f"{path} has no {task.name} examples.")
    needed = max(*text_index, label_index) + 1
    texts, labels = [], []
    for number, row in rows:
        if max_examples is not None and len(texts) >= max_examples:
            break
        if len(row) < needed:
            raise ValueError(
                f"{path}, line {number}: {len(row)} column(s), a GLUE {task.name} row "
                f"needs at least {needed}."
            )
        texts.append(tuple(row[i] for i in text_index))
        labels.append(_label(task, row[label_index].strip(), path, number))
    dtype = "float32" if task.is_regression else "int32"
    return texts, np.asarray(labels, dtype=dtype)


def _not_utf8(path, error):
    """Names the file, line and byte of a decoding error."""
    with open(path, "rb") as file:
        for number, line in enumerate(file, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as line_error:
                return (
                    f"{path}, line {number}: not UTF-8 (byte "
                    f"0x{line[line_error.start]:02x} at column {line_error.start + 1}); "
                    "GLUE files are UTF-8 text: convert it (e.g. with iconv)."
                )
    return f"{path} is not UTF-8 text ({error.reason} at byte {error.start})."


def _label(task, value, path, number):
    if task.is_regression:
        try:
            return float(value)
        except ValueError:
            raise ValueError(
                f"{path}, line {number}: the {task.name} score {value!r} is not a number."
            ) from None
    if value not in task.labels:
        raise ValueError(
            f"{path}, line {number}: unknown {task.name} label {value!r}; expected one of "
            f"{list(task.labels)} (test files without labels cannot be used for training "
            "or evaluation)."
        )
    return task.labels.index(value)


def glue_examples_from_tfds(task, split, data_dir=None, max_examples=None, name=None):
    """Reads a GLUE task from TensorFlow Datasets (`glue/<task>`).

    Args:
        task: a `GlueTask` or a task name.
        split: str, e.g. `"train"`, `"validation"`, `"validation_matched"`.
        data_dir: optional TFDS data directory.
        max_examples: int, read at most this many examples.
        name: the TFDS dataset, `glue/<task>` by default; another dataset
            must have the features of `glue/<task>` (`label` and the
            task's text features).

    Returns:
        `(texts, labels)` as `read_glue_tsv`.

    Raises:
        ValueError: unknown dataset or split, missing features, or no
            labelled example.
    """
    from training.tfds_sources import load_tfds

    task = get_task(task) if isinstance(task, str) else task
    name = name or f"glue/{task.name}"
    dataset, info = load_tfds(name, split, data_dir)
    features = list(info.features.keys()) if hasattr(info.features, "keys") else []
    missing = [key for key in (*task.tfds_texts, "label") if key not in features]
    if missing:
        raise ValueError(
            f"TFDS {name} has no feature(s) {missing} of GLUE {task.name} (it has {features})."
        )
    if max_examples is not None:
        dataset = dataset.take(max_examples)
    texts, labels = [], []
    for example in dataset.as_numpy_iterator():
        label = example["label"]
        if not task.is_regression and label < 0:
            continue  # TFDS's unlabelled test splits use -1.
        texts.append(
            tuple(example[key].decode("utf-8", errors="replace") for key in task.tfds_texts)
        )
        labels.append(label)
    if not texts:
        raise ValueError(f"TFDS {name} ({split}) has no labelled examples.")
    dtype = "float32" if task.is_regression else "int32"
    return texts, np.asarray(labels, dtype=dtype)


# === Metrics ===


def accuracy(labels, predictions):
    """The fraction of predictions equal to the labels."""
    labels, predictions = _pair(labels, predictions)
    return float(np.mean(labels == predictions))


def f1_score(labels, predictions, positive=1):
    """F1 of the positive class (GLUE's MRPC and QQP); 0 when undefined."""
    labels, predictions = _pair(labels, predictions)
    true_positives = np.sum((predictions == positive) & (labels == positive))
    predicted = np.sum(predictions == positive)
    actual = np.sum(labels == positive)
    if predicted + actual == 0:
        return 0.0
    return float(2.0 * true_positives / (predicted + actual))


def matthews_corrcoef(labels, predictions):
    """Matthews correlation of binary labels (GLUE's CoLA); 0 when undefined."""
    labels, predictions = _pair(labels, predictions)
    labels, predictions = labels.astype(bool), predictions.astype(bool)
    tp = float(np.sum(labels & predictions))
    tn = float(np.sum(~labels & ~predictions))
    fp = float(np.sum(~labels & predictions))
    fn = float(np.sum(labels & ~predictions))
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return float((tp * tn - fp * fn) / denominator) if denominator else 0.0


def pearson_corrcoef(labels, predictions):
    """Pearson correlation; 0 when a side is constant."""
    x, y = _pair(labels, predictions, dtype="float64")
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / denominator) if denominator else 0.0


def _ranks(values):
    """Ranks from 1, ties given their average rank (as scipy's `rankdata`)."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype="float64")
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0
            start = end
    return ranks


def spearman_corrcoef(labels, predictions):
    """Spearman rank correlation (Pearson of the tie-averaged ranks)."""
    x, y = _pair(labels, predictions, dtype="float64")
    return pearson_corrcoef(_ranks(x), _ranks(y))


METRICS = {
    "accuracy": accuracy,
    "f1": f1_score,
    "matthews_corrcoef": matthews_corrcoef,
    "pearson": pearson_corrcoef,
    "spearman": spearman_corrcoef,
}


def _pair(labels, predictions, dtype=None):
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if dtype:
        labels, predictions = labels.astype(dtype), predictions.astype(dtype)
    labels, predictions = labels.reshape(-1), predictions.reshape(-1)
    if labels.shape != predictions.shape:
        raise ValueError(f"{labels.shape[0]} labels but {predictions.shape[0]} predictions.")
    if not labels.size:
        raise ValueError("No examples to score.")
    return labels, predictions


def predictions_from_outputs(task, outputs):
    """Class indices (argmax of logits) or scores (regression) of the model outputs."""
    task = get_task(task) if isinstance(task, str) else task
    outputs = np.asarray(outputs)
    if task.is_regression:
        return outputs.reshape(-1)
    return outputs.argmax(axis=-1)


def task_metrics(task, labels, predictions):
    """The GLUE metrics of a task, main metric first.

    Args:
        task: a `GlueTask` or a task name.
        labels: the gold class indices (or scores for STS-B).
        predictions: predicted class indices (or scores).

    Returns:
        A dict from metric name to float, e.g. `{"matthews_corrcoef": 0.41,
        "accuracy": 0.78}` for CoLA.
    """
    task = get_task(task) if isinstance(task, str) else task
    return {name: METRICS[name](labels, predictions) for name in task.metrics}
