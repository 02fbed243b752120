"""Pre-training end to end: `python -m training.pretrain` on the dense loop and on the default path.

    python benchmarks/pretrain_speed.py [--steps 200] [--json PATH | --regenerate]

Runs `python -m training.pretrain` once per path (`--skip-halted dense`, then
`--skip-halted auto`), each in its own process, with the same preset
(`albert_act_base`), corpus (WikiText-2 in `../shared/data/corpus`), seed,
batch and vocabulary (ALBERT v2's from `../shared`, or one the first run trains and the second reuses), and
reads the log lines the training loop prints every `--log-every` steps:
loss, mean depth (`updates`) and examples/s of each window. Reports
examples/s over the run (the mean of the windows after the first, which
holds tracing and compilation), the wall time, the loss curves and their
largest difference (the same seed and data: they differ only by float
rounding between the paths). A run that fails is reported as
"unavailable: <reason>" (its last line of output).

Writes `runs/pretrain_speed/results.json` (or `--json PATH`); `--regenerate`
writes the committed `benchmarks/pretrain_speed.json`, which
`benchmarks/report.py` quotes in `benchmarks/RESULTS.md`.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("KERAS_ACT_SHARED", REPO.parent / "shared"))  # as the other benchmarks
DEFAULT_CORPUS = SHARED / "data" / "corpus" / "wikitext2_wiki.valid.tokens"
# ALBERT v2's own vocabulary (the base preset's), where the shared folder has it.
DEFAULT_VOCAB = SHARED / "data" / "albert_v2_spiece.model"
DEFAULT_VOCAB_SIZE = 4000  # WikiText-2's validation text is too small for 8,000
DEFAULT_JSON = REPO / "runs" / "pretrain_speed" / "results.json"
COMMITTED_JSON = REPO / "benchmarks" / "pretrain_speed.json"
PATHS = ("dense", "auto")  # --skip-halted of training.pretrain
LOG_LINE = re.compile(
    r"^step (?P<step>\d+)/\d+\s+loss (?P<loss>[-\d.eE+naif]+).*?updates (?P<updates>[\d.]+)"
    r".*\((?P<rate>[\d.]+) examples/s\)"
)


def parse_log(text):
    """The logged windows of a training run's output: step, loss, updates, examples/s.

    >>> parse_log("step 10/20  loss 7.5000  mlm_loss 7.4 updates 3.20  gradient_norm 1 (12.5 examples/s)")
    [{'step': 10, 'loss': 7.5, 'updates': 3.2, 'examples_per_second': 12.5}]
    """
    windows = []
    for line in text.splitlines():
        match = LOG_LINE.match(line.strip())
        if match:
            windows.append(
                {
                    "step": int(match["step"]),
                    "loss": float(match["loss"]),
                    "updates": float(match["updates"]),
                    "examples_per_second": float(match["rate"]),
                }
            )
    return windows


def run_figures(windows, wall_seconds, steps, batch_size):
    """examples/s over the run (windows after the first), wall time, the curves."""
    rates = [w["examples_per_second"] for w in windows[1:]] or [
        w["examples_per_second"] for w in windows
    ]
    return {
        "examples_per_second": statistics.mean(rates) if rates else None,
        "examples_per_second_windows": [w["examples_per_second"] for w in windows],
        "wall_seconds": wall_seconds,
        "examples_per_second_wall": steps * batch_size / wall_seconds,
        "steps": [w["step"] for w in windows],
        "loss": [w["loss"] for w in windows],
        "updates": [w["updates"] for w in windows],
    }


def pretrain_command(args, path, model_dir, vocab):
    """The `python -m training.pretrain` command line of one path."""
    command = [
        sys.executable, "-m", "training.pretrain",
        "--preset", args.preset,
        "--corpus", str(args.corpus),
        "--steps", str(args.steps),
        "--batch-size", str(args.batch_size),
        "--sequence-length", str(args.sequence_length),
        "--seed", str(args.seed),
        "--skip-halted", path,
        "--log-every", str(args.log_every),
        "--checkpoint-every", str(args.steps),
        "--export-dir", "",
        "--out", str(model_dir),
    ]
    command += ["--vocab", str(vocab)] if vocab else ["--vocab-size", str(args.vocab_size)]
    return command + (["--jit-compile"] if args.jit_compile else [])


def compare(results):
    """Speed ratio and loss-curve difference of the default path against the dense loop."""
    dense, auto = results.get("dense", {}), results.get("auto", {})
    if "loss" not in dense or "loss" not in auto:
        return {}
    pairs = list(zip(dense["loss"], auto["loss"], strict=False))
    return {
        "default_over_dense_examples_per_second": auto["examples_per_second"]
        / dense["examples_per_second"],
        "default_over_dense_wall": dense["wall_seconds"] / auto["wall_seconds"],
        "loss_max_abs_difference": max(abs(a - b) for a, b in pairs) if pairs else None,
        "loss_max_relative_difference": max(abs(a - b) / abs(a) for a, b in pairs) if pairs else None,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps per run (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=8, help="sequences per step (default: %(default)s)")
    parser.add_argument("--sequence-length", type=int, default=128, help="tokens per sequence (default: %(default)s)")
    parser.add_argument("--preset", default="albert_act_base", help="the architecture (default: %(default)s)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="plain-text corpus (default: %(default)s)")
    vocabulary = parser.add_mutually_exclusive_group()
    vocabulary.add_argument(
        "--vocab",
        type=Path,
        help="SentencePiece model of both runs (default: ALBERT v2's, ../shared/data/albert_v2_spiece.model, "
        f"where it is; otherwise the first run trains one of {DEFAULT_VOCAB_SIZE} pieces)",
    )
    vocabulary.add_argument("--vocab-size", type=int, help="train a vocabulary of this many pieces in the first run instead")
    parser.add_argument("--log-every", type=int, default=10, help="steps per logged window (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of both runs (default: %(default)s)")
    parser.add_argument("--jit-compile", action="store_true", help="XLA-compile both runs' training step")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", default=str(DEFAULT_JSON), help="where to write the figures (default: %(default)s)")
    output.add_argument("--regenerate", action="store_true", help=f"write the committed {COMMITTED_JSON.relative_to(REPO)}")
    args = parser.parse_args(argv)
    if args.vocab is None and args.vocab_size is None:
        if DEFAULT_VOCAB.is_file():
            args.vocab = DEFAULT_VOCAB
        else:
            args.vocab_size = DEFAULT_VOCAB_SIZE
    for name in ("steps", "batch_size", "sequence_length", "vocab_size", "log_every"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if not args.corpus.is_file():
        parser.error(f"--corpus {args.corpus}: no such file (WikiText is in ../shared/data/corpus)")
    if args.vocab is not None and not args.vocab.is_file():
        parser.error(f"--vocab {args.vocab}: no such file")
    json_path = Path(COMMITTED_JSON if args.regenerate else args.json)

    results = {
        "command": "python benchmarks/pretrain_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                     if k not in ("json", "regenerate")},
    }
    with tempfile.TemporaryDirectory(prefix="pretrain_speed_") as work:
        vocab = args.vocab
        for path in PATHS:
            model_dir = Path(work) / path
            command = pretrain_command(args, path, model_dir, vocab)
            print(f"[pretrain_speed] {path}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
            start = time.perf_counter()
            result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if result.returncode != 0:
                lines = [x for x in (result.stderr + result.stdout).strip().splitlines() if x.strip()]
                reason = lines[-1] if lines else f"exit status {result.returncode}"
                results[path] = {"unavailable": f"unavailable: training.pretrain failed: {reason[:300]}"}
                print(f"[pretrain_speed] {path}: {results[path]['unavailable']}", file=sys.stderr)
                continue
            results[path] = run_figures(parse_log(result.stdout), wall, args.steps, args.batch_size)
            vocab = vocab or model_dir / "vocab" / "spiece.model"
    results["comparison"] = compare(results)
    failed = [path for path in PATHS if "unavailable" in results[path]]
    if args.regenerate and failed:
        print(f"--regenerate: {', '.join(failed)} failed; the committed figures are left as they are",
              file=sys.stderr)
        return 1
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2))
    for path in PATHS:
        figures = results[path]
        if "unavailable" in figures:
            print(f"{path:>6}: {figures['unavailable']}")
        else:
            print(
                f"{path:>6}: {figures['examples_per_second']:.2f} examples/s (windows after the first), "
                f"{figures['wall_seconds']:.0f} s wall; loss {figures['loss'][:1]} -> {figures['loss'][-1:]}"
            )
    for name, value in results["comparison"].items():
        print(f"{name}: {value:.4g}")
    print(f"wrote {json_path}")
    if args.regenerate:
        from benchmarks.report import COMMITTED_JSON as RUN_JSON
        from benchmarks.report import load_results, write_generated_sections

        for page in write_generated_sections(load_results(RUN_JSON), results):
            print(f"rewrote the generated section of {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
