"""Tokenizer throughput: the in-graph preprocessor in `tf.data` vs Hugging Face.

    python benchmarks/tokenizer_throughput.py [--quick] [--json PATH]

Sentences per second turned into `token_ids` / `segment_ids` /
`padding_mask` of `--sequence-length` by `keras_act.AlbertActPreprocessor`
in a `tf.data` pipeline (parallel and single-call map), eagerly, and by the
slow `transformers.AlbertTokenizer` in Python on the same sentences (GLUE
SST-2 dev by default, repeated), with a check that both give the same ids.
Needs `../shared` (the ALBERT vocabulary and GLUE files; `KERAS_ACT_SHARED`
overrides it) and `transformers`; without them it says so and exits.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KERAS_ACT_SHARED", REPO.parent / "shared"))


def read_sentences(path):
    """The sentences of a GLUE `.tsv` file (SST-2: column 1 after a header)."""
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    if lines and lines[0].startswith("sentence\t"):
        return [line.split("\t")[0] for line in lines[1:] if line]
    return [line.split("\t")[3] for line in lines if line]  # CoLA: no header, column 4


def best_rate(run, count, repeats):
    """Sentences per second of the fastest of `repeats` timed runs (after a warm-up)."""
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best, best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller corpus")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--sentences",
        default=str(SHARED / "data" / "glue" / "SST-2" / "dev.tsv"),
        help="GLUE .tsv file (default: %(default)s, SST-2 dev)",
    )
    parser.add_argument(
        "--sequence-length", type=int, default=128, help="packed length (default: %(default)s)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=256, help="sentences per call (default: %(default)s)"
    )
    args = parser.parse_args(argv)

    vocab = SHARED / "data" / "albert_v2_spiece.model"
    for path in (vocab, Path(args.sentences)):
        if not path.is_file():
            print(f"Skipped: {path} is absent (set KERAS_ACT_SHARED to the shared folder).")
            return 0
    try:
        import transformers
    except ImportError:
        print("Skipped: the Hugging Face reference needs `transformers` (pip install -e .[dev]).")
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    import tensorflow_text

    import keras_act

    transformers.logging.set_verbosity_error()
    copies = 2 if args.quick else 10
    sentences = read_sentences(args.sentences) * copies
    repeats = 1 if args.quick else 3
    length, batch_size = args.sequence_length, args.batch_size
    count = len(sentences)

    tokenizer = keras_act.AlbertActTokenizer(proto=str(vocab))
    preprocessor = keras_act.AlbertActPreprocessor(tokenizer, sequence_length=length)
    hf = transformers.AlbertTokenizer(vocab_file=str(vocab))
    batches = [sentences[i : i + batch_size] for i in range(0, count, batch_size)]

    def dataset(parallel):
        data = tf.data.Dataset.from_tensor_slices(sentences).batch(batch_size)
        data = data.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE if parallel else None)
        return data.prefetch(tf.data.AUTOTUNE)

    parallel, serial = dataset(True), dataset(False)

    def run_dataset(data):
        return np.concatenate([x["token_ids"].numpy() for x in data])

    def run_eager():
        return [preprocessor(batch)["token_ids"] for batch in batches]

    def run_hf():
        return np.concatenate(
            [
                hf(b, truncation=True, max_length=length, padding="max_length")["input_ids"]
                for b in batches
            ]
        )

    identical = bool(np.array_equal(run_dataset(parallel), run_hf()))
    rows = []
    for name, run in [
        ("keras-act, tf.data map (AUTOTUNE)", lambda: run_dataset(parallel)),
        ("keras-act, tf.data map (1 call)", lambda: run_dataset(serial)),
        ("keras-act, eager batches", run_eager),
        ("Hugging Face slow AlbertTokenizer", run_hf),
    ]:
        rate, seconds = best_rate(run, count, repeats)
        rows.append({"pipeline": name, "sentences": count, "seconds": seconds, "per_second": rate})
    reference = rows[-1]["per_second"]
    for row in rows:
        row["vs_hugging_face"] = row["per_second"] / reference

    print(
        f"{count} sentences ({Path(args.sentences).name} x{copies}), "
        f"sequence_length={length}, batch_size={batch_size}, "
        f"{os.cpu_count()} CPUs, best of {repeats}"
    )
    print(f"{'pipeline':<36} {'seconds':>9} {'sentences/s':>12} {'x HF':>7}")
    for row in rows:
        print(
            f"{row['pipeline']:<36} {row['seconds']:>9.3f} {row['per_second']:>12,.0f} "
            f"{row['vs_hugging_face']:>7.2f}"
        )
    print(f"Identical token ids to Hugging Face: {'yes' if identical else 'NO'}")
    print(f"Ratio tf.data (AUTOTUNE) / Hugging Face: {rows[0]['vs_hugging_face']:.2f}")
    if args.json:
        result = {
            "sentences_file": str(args.sentences),
            "sentences": count,
            "sequence_length": length,
            "batch_size": batch_size,
            "repeats": repeats,
            "identical_ids": identical,
            "ratio_tf_data_vs_hugging_face": rows[0]["vs_hugging_face"],
            "rows": rows,
            "environment": {
                "python": platform.python_version(),
                "tensorflow": tf.__version__,
                "tensorflow_text": tensorflow_text.__version__,
                "transformers": transformers.__version__,
                "cpus": os.cpu_count(),
                "machine": platform.machine(),
            },
        }
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
