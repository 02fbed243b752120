"""Serving load: 8 client threads, 2,000 requests, one loaded SavedModel session, unbatched and batched.

    python benchmarks/serving_load.py [--quick] [--batching] [--json PATH] [--docs MD] [--saved-model DIR]

Exports a model with `keras_act.export.export_saved_model` (with the
optional depth-budget inputs, which the requests leave out; or takes an
exported version folder), then loads it the way TensorFlow Serving does (the
TF1 session loader and the SignatureDefs' tensor names) in an isolated process
that imports only tensorflow and tensorflow_text (`benchmarks/serving_session.py`).
There, each of `--threads` client threads takes the next request until
`--requests` have been answered; every request is one raw text (a batch of
one, as online clients send) to `serving_default`, cycling through 32 texts of
varied length. Every threaded answer must equal, bit for bit, the
single-threaded answer to the same request (the exit status is 1 otherwise).

With `--batching`, the same requests again through a batcher that merges concurrent
requests as the model server's `--enable_batching` does
(`BatchingServer` in benchmarks/serving_session.py), with the
`batching_parameters.txt` the export wrote (`batched_*` figures); its
answers are compared with the unbatched ones (labels, ids and layer counts
equal, floats within `batched_max_float_difference`).

Prints and writes (JSON) requests per second, p50 and p99 latency under load,
and the single-threaded p50 latency, with the machine's 1-minute load average
before and after the run (other work on a shared machine slows every
figure). The default model is the `albert_act_tiny` preset (ALBERT-base
geometry, at most 6 layers; random weights, so halting is not that of a
trained model) with ALBERT's vocabulary
(`../shared/data/albert_v2_spiece.model`, else a 64-piece one trained on the request texts) at
sequence length 128. `--quick` exports a small backbone (hidden size 32) at
sequence length 32 and sends 200 requests: a smoke run whose figures mean
little. `benchmarks/serving_load.json` holds the figures of a full run on
the development machine (2 shared CPU cores), written by

    python benchmarks/serving_load.py --batching --json benchmarks/serving_load.json

(the JSON records that command, `command`; docs/serving.md shows them as
`figures_table`, which `--docs docs/serving.md` writes there). The tests run the same load with
8 threads and 96 requests on a small model (tests/test_export.py); the
2,000-request figures come only from this script.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.models import SMALL_SERVING_CONFIG  # noqa: E402
from keras_act.export.batching import (  # noqa: E402
    BATCHING_PARAMETERS_FILE,
    parse_batching_parameters,
)

SHARED_VOCAB = (
    Path(os.environ.get("KERAS_ACT_SHARED", REPO.parent / "shared"))
    / "data"
    / "albert_v2_spiece.model"
)

GENERATED_VOCABULARY_SIZE = 64  # at most 70 pieces fit the request texts

WORDS = (
    "the model reads every token again until it decides to halt and some tokens need "
    "more layers than others because rare words punctuation and numbers like 1,000 "
    "are harder to encode than frequent function words in a sentence"
).split()


def request_texts(count=32):
    """Texts of 1 to about 100 words, deterministic."""
    return [
        " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(1 + (i * 13) % 100))
        for i in range(count)
    ]


def generated_vocabulary(work_dir):
    """An ALBERT-style SentencePiece model trained on the request texts.

    For machines without `../shared` (ALBERT's own vocabulary); trained with
    `training.vocab.train_vocabulary`, as `python -m training.vocab` does.
    """
    from training.vocab import train_vocabulary

    corpus = Path(work_dir) / "request_texts.txt"
    corpus.write_text("\n".join(request_texts()) + "\n", encoding="utf-8")
    return str(
        train_vocabulary([corpus], GENERATED_VOCABULARY_SIZE, Path(work_dir) / "vocab", seed=0)
    )


def export_model(work_dir, quick):
    import keras

    import keras_act
    from keras_act.export import export_saved_model
    from keras_act.tokenizers import AlbertActTokenizer

    if SHARED_VOCAB.exists():
        vocab, vocab_name = str(SHARED_VOCAB), "albert_v2_spiece.model"
    else:
        vocab = generated_vocabulary(work_dir)
        vocab_name = f"{GENERATED_VOCABULARY_SIZE}-piece vocabulary of the request texts"
    tokenizer = AlbertActTokenizer(proto=vocab)
    keras.utils.set_random_seed(0)
    if quick:
        backbone = keras_act.AlbertActBackbone(
            vocabulary_size=tokenizer.vocabulary_size(), **SMALL_SERVING_CONFIG
        )
        model_name, sequence_length = "small backbone (hidden 32, <= 6 layers)", 32
    else:
        backbone = keras_act.AlbertActBackbone.from_preset(
            "albert_act_tiny", vocabulary_size=tokenizer.vocabulary_size()
        )
        model_name, sequence_length = "albert_act_tiny (ALBERT-base geometry, <= 6 layers)", 128
    start = time.perf_counter()
    # With the optional depth-budget inputs (left out by the requests: the
    # batcher concatenates their [1] defaults like the texts).
    path = export_saved_model(
        backbone,
        tokenizer,
        os.path.join(work_dir, "albert_act"),
        sequence_length=sequence_length,
    )
    return path, {
        "model": model_name,
        "vocabulary": vocab_name,
        "sequence_length": sequence_length,
        "export_s": round(time.perf_counter() - start, 1),
    }


def _load_average():
    """The 1-minute load average of the machine (`None` where unknown)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _argv(argv):
    return list(sys.argv[1:] if argv is None else argv)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small model at sequence length 32 and 200 requests (a smoke run)",
    )
    parser.add_argument(
        "--json", default=None, help="write the figures to this JSON file (default: print only)"
    )
    parser.add_argument(
        "--saved-model",
        help="an exported version folder to load instead (default: export albert_act_tiny)",
    )
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument(
        "--requests",
        type=int,
        default=None,
        help="requests in all (default: 2000, 200 with --quick)",
    )
    parser.add_argument(
        "--batching",
        action="store_true",
        help="also run the requests through the server's batcher (batching_parameters.txt)",
    )
    parser.add_argument(
        "--docs",
        default=None,
        help="write the figures' table into this Markdown file, between "
        f"{TABLE_START} and {TABLE_END} (docs/serving.md)",
    )
    args = parser.parse_args(argv)
    total = args.requests or (200 if args.quick else 2000)
    if args.docs:
        try:
            text = Path(args.docs).read_text(encoding="utf-8")
        except OSError as error:
            parser.error(f"--docs {args.docs}: {error.strerror}")
        if TABLE_START not in text or TABLE_END not in text:
            parser.error(f"--docs {args.docs} has no {TABLE_START} ... {TABLE_END} block")

    from benchmarks.serving_client import run_isolated, text_request

    # The machine is shared: how busy it was is part of the figures.
    load_before = _load_average()
    with tempfile.TemporaryDirectory() as work_dir:
        if args.saved_model:
            path, info = args.saved_model, {"model": args.saved_model}
        else:
            path, info = export_model(work_dir, args.quick)
        requests = [text_request([text]) for text in request_texts()]
        plan = {
            "version_dir": path,
            "load": {"requests": requests, "threads": args.threads, "total": total},
        }
        parameters_path = Path(path).parent / BATCHING_PARAMETERS_FILE
        if args.batching and not parameters_path.is_file():
            parser.error(f"--batching needs {parameters_path} (written by the export)")
        if args.batching:
            plan["batched_load"] = {
                "requests": requests,
                "threads": args.threads,
                "total": total,
                "parameters": parse_batching_parameters(parameters_path.read_text("utf-8")),
            }
        results = run_isolated(plan)
    load = results["load"]
    figures = {
        **info,
        "threads": load["threads"],
        "requests": load["total"],
        "distinct_requests": load["distinct_requests"],
        "requests_per_s": round(load["requests_per_s"], 1),
        "latency_p50_ms": round(load["latency_p50_ms"], 2),
        "latency_p99_ms": round(load["latency_p99_ms"], 2),
        "single_thread_latency_p50_ms": round(load["single_thread_latency_p50_ms"], 2),
        "wall_s": round(load["wall_s"], 1),
        "identical_to_single_threaded": load["mismatch_count"] == 0 and not load["errors"],
        "mismatches": load["mismatch_count"],
        "errors": load["errors"],
        **_batched_figures(results.get("batched_load")),
        "session_load_s": round(results["load_s"], 2),
        "cpus": os.cpu_count(),
        "load_average_1min": [load_before, _load_average()],
        "machine": platform.machine(),
        "tensorflow": results["isolation"]["tensorflow"],
        "command": " ".join(["python", "benchmarks/serving_load.py", *_argv(argv)]),
    }
    width = max(len(key) for key in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if args.docs:
        write_docs_table(figures_table(figures), args.docs)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(figures, file, indent=2)
            file.write("\n")
    ok = figures["identical_to_single_threaded"]
    if "batched_requests_per_s" in figures:
        ok = ok and figures["batched_errors"] == [] and figures["batched_non_float_mismatches"] == 0
    return 0 if ok else 1


TABLE_START = "<!-- serving-load-table:start -->"
TABLE_END = "<!-- serving-load-table:end -->"


def figures_table(figures):
    """The unbatched and batched figures of a run as a Markdown table.

    Example:

    >>> print(figures_table({"requests_per_s": 7.8, "latency_p50_ms": 934.7,
    ...     "latency_p99_ms": 2604.4, "batched_requests_per_s": 12.0,
    ...     "batched_latency_p50_ms": 600.0, "batched_latency_p99_ms": 900.0,
    ...     "batched_mean_batch_size": 4.0, "load_average_1min": [4.5, 8.4]}))
    | requests | requests/s | p50 latency (ms) | p99 latency (ms) | mean batch |
    | --- | ---: | ---: | ---: | ---: |
    | unbatched (8 threads, one session) | 7.8 | 934.7 | 2604.4 | 1 |
    | batched (`batching_parameters.txt`) | 12.0 | 600.0 | 900.0 | 4.00 |
    """
    rows = [
        "| requests | requests/s | p50 latency (ms) | p99 latency (ms) | mean batch |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| unbatched (8 threads, one session) | {figures['requests_per_s']:.1f} "
        f"| {figures['latency_p50_ms']:.1f} | {figures['latency_p99_ms']:.1f} | 1 |",
    ]
    if "batched_requests_per_s" in figures:
        rows.append(
            f"| batched (`batching_parameters.txt`) | {figures['batched_requests_per_s']:.1f} "
            f"| {figures['batched_latency_p50_ms']:.1f} "
            f"| {figures['batched_latency_p99_ms']:.1f} "
            f"| {figures['batched_mean_batch_size']:.2f} |"
        )
    return "\n".join(rows)


def write_docs_table(table, path):
    """Replaces the text between `TABLE_START` and `TABLE_END` in `path`."""
    text = Path(path).read_text(encoding="utf-8")
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    Path(path).write_text(text[:start] + "\n" + table + "\n" + text[end:], encoding="utf-8")


def _batched_figures(batched):
    """The batched run's figures (none without a batching_parameters.txt)."""
    if not batched:
        return {}
    return {
        "batching_parameters": batched["parameters"],
        "batched_requests_per_s": round(batched["requests_per_s"], 1),
        "batched_latency_p50_ms": round(batched["latency_p50_ms"], 2),
        "batched_latency_p99_ms": round(batched["latency_p99_ms"], 2),
        "batched_mean_batch_size": round(batched["mean_batch_size"], 2),
        "batched_wall_s": round(batched["wall_s"], 1),
        "batched_bit_identical": batched["bit_identical"],
        "batched_non_float_mismatches": len(batched["non_float_mismatches"]),
        "batched_max_float_difference": batched["max_float_difference"],
        "batched_errors": batched["errors"],
    }


if __name__ == "__main__":
    sys.exit(main())
