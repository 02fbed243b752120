"""Depth budget per request: dev accuracy, layers per token and latency on SST-2.

    python benchmarks/depth_budget.py [--steps N] [--work DIR] [--no-docs]

Fine-tunes the demo configuration (random initial weights, as
`python -m training.finetune --model demo` does) on SST-2 from
`../shared/data/glue/SST-2` (a short run: `--steps` steps on the first
`--train-examples` examples; the fine-tuned model is kept in `--work` and
reused by the next run), exports it with `keras_act.export.export_saved_model`
(signatures with the optional `max_layers` and `halting_threshold` inputs),
loads the export with the TF1 session loader as the model server does, and
for each budget (every `max_layers` from 1 to the cap at the trained
threshold; halting thresholds from the trained one down to 0.1 at the cap)
measures the dev accuracy (all 872 dev sentences), the mean number of layers
per real token, and the latency of a request of one sentence (median of
`--latency-requests` requests).

Writes `docs/depth_budget.json`, `docs/depth_budget.png` and the table
between the `depth-budget-table` markers of docs/serving.md (unless
`--no-docs`). The machine's load average before and after is recorded:
latencies on a shared machine are slower than on an idle one.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHARED_DATA = Path(os.environ.get("KERAS_ACT_SHARED", REPO.parent / "shared")) / "data"
SST2 = SHARED_DATA / "glue" / "SST-2"
VOCAB = SHARED_DATA / "albert_v2_spiece.model"
DOCS = REPO / "docs"
TABLE_START = "<!-- depth-budget-table:start -->"
TABLE_END = "<!-- depth-budget-table:end -->"
THRESHOLDS = (0.9, 0.75, 0.5, 0.25, 0.1)


def read_sst2(path):
    """`(sentences, labels)` of a GLUE SST-2 TSV file (header `sentence\\tlabel`)."""
    sentences, labels = [], []
    with open(path, encoding="utf-8") as file:
        header = file.readline().rstrip("\n").split("\t")
        if header[:2] != ["sentence", "label"]:
            raise SystemExit(f"depth_budget.py: error: {path} is not a SST-2 TSV (header {header})")
        for line in file:
            sentence, label = line.rstrip("\n").split("\t")
            sentences.append(sentence)
            labels.append(int(label))
    return sentences, labels


def finetune(work, steps, train_examples, sequence_length):
    """Fine-tunes the demo configuration on SST-2 (or reuses `work`'s model).

    Returns:
        The path of the fine-tuned `.keras` model.
    """
    model_dir = Path(work) / "finetune"
    model_path = model_dir / "model.keras"
    if model_path.is_file():
        return model_path
    from training.finetune import main as finetune_main

    status = finetune_main(
        [
            "--task", "sst2",
            "--train", str(SST2 / "train.tsv"),
            "--dev", str(SST2 / "dev.tsv"),
            "--model", "demo",
            "--vocab", str(VOCAB),
            "--max-train-examples", str(train_examples),
            "--sequence-length", str(sequence_length),
            "--steps", str(steps),
            "--batch-size", "32",
            "--learning-rate", "1e-3",
            "--seed", "0",
            "--out", str(model_dir),
        ]
    )
    if status not in (None, 0) or not model_path.is_file():
        raise SystemExit(f"depth_budget.py: error: fine-tuning failed (status {status})")
    return model_path


def budgets(cap, default_threshold):
    """The budgets measured: `(max_layers, halting_threshold)`, `None` for the
    trained value (the input left out of the request).

    Example:

    >>> budgets(3, 0.99)[:4]
    [(None, None), (1, None), (2, None), (None, 0.9)]
    """
    rows = [(None, None)]
    rows += [(layers, None) for layers in range(1, cap)]
    rows += [(None, t) for t in THRESHOLDS if t < default_threshold]
    return rows


class SessionModel:
    """An export loaded with the TF1 session loader (the model server's)."""

    def __init__(self, version_dir):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops)

        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], version_dir)
        self.signature = meta_graph.signature_def["serving_default"]
        self.has_label = "label" in self.signature.outputs

    def run(self, texts, max_layers=None, halting_threshold=None):
        import numpy as np

        inputs = self.signature.inputs
        feeds = {inputs["text"].name: np.array(texts, dtype=object)}
        if max_layers is not None:
            feeds[inputs["max_layers"].name] = np.int32(max_layers)
        if halting_threshold is not None:
            feeds[inputs["halting_threshold"].name] = np.float32(halting_threshold)
        names = ["updates", "padding_mask"] + (["label"] if self.has_label else [])
        fetches = {name: self.signature.outputs[name].name for name in names}
        return self.session.run(fetches, feeds)


def measure(version_dir, sentences, labels=None, latency_requests=50, batch_size=64):
    """Accuracy, mean layers per token and latency for each budget.

    Args:
        version_dir: an export with the depth-budget inputs.
        sentences: the dev sentences.
        labels: their labels, or `None` (no accuracy: a model without `label`).
        latency_requests: single-sentence requests timed per budget.
        batch_size: sentences per request for accuracy and depth.

    Returns:
        A list of dicts, one per budget (`budgets`).
    """
    import numpy as np

    with open(os.path.join(version_dir, "keras_act_model.json"), encoding="utf-8") as file:
        facts = json.load(file)
    cap, threshold = facts["max_layers"], facts["halting_threshold"]
    model = SessionModel(version_dir)
    rows = []
    for max_layers, halting_threshold in budgets(cap, threshold):
        correct, layers, tokens = 0, 0.0, 0
        for start in range(0, len(sentences), batch_size):
            outputs = model.run(sentences[start : start + batch_size], max_layers, halting_threshold)
            mask = outputs["padding_mask"].astype(bool)
            layers += float(outputs["updates"][mask].sum())
            tokens += int(mask.sum())
            if labels is not None:
                correct += int(np.sum(outputs["label"] == labels[start : start + batch_size]))
        model.run(sentences[:1], max_layers, halting_threshold)  # warm
        latencies = []
        for index in range(latency_requests):
            begin = time.perf_counter()
            model.run([sentences[index % len(sentences)]], max_layers, halting_threshold)
            latencies.append(time.perf_counter() - begin)
        rows.append(
            {
                "max_layers": cap if max_layers is None else max_layers,
                "halting_threshold": round(threshold if halting_threshold is None else halting_threshold, 4),
                "trained": max_layers is None and halting_threshold is None,
                "accuracy": None if labels is None else correct / len(sentences),
                "mean_layers_per_token": layers / tokens,
                "latency_ms_p50": float(np.median(latencies) * 1e3),
            }
        )
    return rows


def markdown_table(rows):
    """The rows as a Markdown table.

    Example:

    >>> print(markdown_table([{"max_layers": 2, "halting_threshold": 0.99, "trained": False,
    ...     "accuracy": 0.5, "mean_layers_per_token": 1.5, "latency_ms_p50": 3.25}]))
    | max_layers | halting_threshold | dev accuracy | layers per token | latency per request (ms, p50) |
    | ---: | ---: | ---: | ---: | ---: |
    | 2 | 0.99 | 0.500 | 1.50 | 3.2 |
    """
    lines = [
        "| max_layers | halting_threshold | dev accuracy | layers per token "
        "| latency per request (ms, p50) |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        accuracy = "n/a" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
        trained = " (trained, no budget inputs)" if row["trained"] else ""
        lines.append(
            f"| {row['max_layers']}{trained} | {row['halting_threshold']:g} | {accuracy} "
            f"| {row['mean_layers_per_token']:.2f} | {row['latency_ms_p50']:.1f} |"
        )
    return "\n".join(lines)


def plot(rows, path):
    """Two panels (against `max_layers`, against `halting_threshold`) of
    accuracy, layers per token and latency; written to `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cap = max(row["max_layers"] for row in rows)
    default = next(row["halting_threshold"] for row in rows if row["trained"])
    by_layers = sorted(
        (r for r in rows if r["halting_threshold"] == default), key=lambda r: r["max_layers"]
    )
    by_threshold = sorted(
        (r for r in rows if r["max_layers"] == cap), key=lambda r: r["halting_threshold"]
    )
    figure, axes = plt.subplots(3, 2, figsize=(10, 8), sharex="col")
    metrics = [
        ("accuracy", "dev accuracy"),
        ("mean_layers_per_token", "layers per token"),
        ("latency_ms_p50", "latency per request (ms)"),
    ]
    for column, (series, key, label) in enumerate(
        [(by_layers, "max_layers", "max_layers"), (by_threshold, "halting_threshold", "halting_threshold")]
    ):
        xs = [row[key] for row in series]
        for row_index, (metric, title) in enumerate(metrics):
            axis = axes[row_index][column]
            ys = [row[metric] if row[metric] is not None else float("nan") for row in series]
            axis.plot(xs, ys, marker="o")
            axis.set_ylabel(title)
            axis.grid(True, alpha=0.3)
        axes[-1][column].set_xlabel(label)
    axes[0][0].set_title(f"halting_threshold = {default:g} (trained)")
    axes[0][1].set_title(f"max_layers = {cap} (trained cap)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_docs_table(table, serving_md):
    """Replaces the text between the `depth-budget-table` markers."""
    text = Path(serving_md).read_text(encoding="utf-8")
    if TABLE_START not in text or TABLE_END not in text:
        raise SystemExit(
            f"depth_budget.py: error: {serving_md} has no {TABLE_START} ... {TABLE_END} markers"
        )
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    Path(serving_md).write_text(f"{head}{TABLE_START}\n{table}\n{TABLE_END}{tail}", encoding="utf-8")


def _load_average():
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--work", default="runs/depth_budget", help="fine-tuning and export folder")
    parser.add_argument("--steps", type=int, default=400, help="fine-tuning steps")
    parser.add_argument("--train-examples", type=int, default=20000, help="SST-2 training examples")
    parser.add_argument("--sequence-length", type=int, default=64, help="tokens per sentence")
    parser.add_argument("--latency-requests", type=int, default=50, help="timed requests per budget")
    parser.add_argument("--no-docs", action="store_true", help="print only; write nothing in docs/")
    args = parser.parse_args(argv)
    for path in (SST2 / "train.tsv", SST2 / "dev.tsv", VOCAB):
        if not path.is_file():
            parser.error(f"{path} is missing (the shared data folder; set KERAS_ACT_SHARED)")

    load_before = _load_average()
    start = time.perf_counter()
    model_path = finetune(args.work, args.steps, args.train_examples, args.sequence_length)
    finetune_s = time.perf_counter() - start

    from keras_act.export import export_saved_model
    from keras_act.model_loading import load_model

    model, preprocessor = load_model(str(model_path))
    export_dir = Path(args.work) / "export"
    version_dir = export_saved_model(
        model, preprocessor, str(export_dir), sequence_length=args.sequence_length,
        measure_batching=False,
    )
    sentences, labels = read_sst2(SST2 / "dev.tsv")
    rows = measure(version_dir, sentences, labels, latency_requests=args.latency_requests)
    table = markdown_table(rows)
    print(table)
    results = {
        "rows": rows,
        "model": "demo configuration (hidden 128, at most 6 layers), random init, fine-tuned on SST-2",
        "finetune": {"steps": args.steps, "train_examples": args.train_examples,
                     "sequence_length": args.sequence_length, "seconds": round(finetune_s, 1)},
        "dev_examples": len(sentences),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "load_average_1min": [load_before, _load_average()],
        "command": " ".join(["python", "benchmarks/depth_budget.py", *(argv or sys.argv[1:])]),
    }
    if not args.no_docs:
        (DOCS / "depth_budget.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        plot(rows, DOCS / "depth_budget.png")
        write_docs_table(table, DOCS / "serving.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
