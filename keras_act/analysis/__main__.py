"""`python -m keras_act.analysis`: how many layers each token used.

    python -m keras_act.analysis --model runs/pretrain/preset --text "The cat sat on the mat."
    python -m keras_act.analysis --model saved_models/albert_act_demo/1 \\
        --corpus heldout.txt --out depth/ --paper tiny

`--text` prints a table of each sentence's pieces and their updates (and,
with `--out`, draws their heat-map); `--corpus` masks the corpus as
pre-training does and writes the statistics (`depth_statistics.md`,
`depth_statistics.json`) and the pictures (`depth_heatmap.png`,
`depth_histograms.png`, `depth_profiles.png`) to `--out`. `--model` is a
preset directory, a `.keras` file, an authors' checkpoint folder (with
`--vocab`) or an exported SavedModel.
"""

import argparse
import codecs
import json
import os
import sys
import time

HEATMAP_FILE = "depth_heatmap.png"
HISTOGRAMS_FILE = "depth_histograms.png"
PROFILES_FILE = "depth_profiles.png"
SENTENCES_FILE = "sentence_depths.json"


PROG = "python -m keras_act.analysis"
# The packed length of --corpus examples unless --sequence-length is given
# (or the model's max_sequence_length when that is shorter).
DEFAULT_SEQUENCE_LENGTH = 128


class SetupError(Exception):
    """A problem with the command's inputs: printed as one line, exit status 2."""


class _DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds `(default: X)` to help lines that do not say their default already."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if "default" in text or default is None or default is False or default == []:
            return text
        return super()._get_help_string(action)


class _OneLineErrorParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line (no usage block)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser():
    parser = _OneLineErrorParser(
        prog=PROG,
        description="Per-token depth (number of ACT updates) of an ALBERT-ACT model.",
        formatter_class=_DefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model",
        required=True,
        help="preset directory, .keras file, authors' checkpoint folder (or hf://...), "
        "or exported SavedModel (version or base folder); required",
    )
    parser.add_argument(
        "--vocab",
        help="SentencePiece model or tokenizer preset directory (default: the model's own "
        "tokenizer; needed for a .keras backbone or a checkpoint without spiece.model)",
    )
    parser.add_argument("--text", action="append", default=[], help="a sentence (repeatable; default: none)")
    parser.add_argument("--corpus", nargs="+", help="plain-text corpus files to analyse (default: none)")
    parser.add_argument(
        "--out", help="output folder of the tables and pictures (needed with --corpus)"
    )
    parser.add_argument(
        "--sequence-length",
        type=int,
        help=f"packed length of the --corpus examples (default: {DEFAULT_SEQUENCE_LENGTH}, "
        "or the model's max_sequence_length when shorter)",
    )
    parser.add_argument(
        "--max-predictions", type=int, help="MLM targets per example (default: 15%% of the length)"
    )
    parser.add_argument("--ngram-masking", type=int, default=1, help="longest masked n-gram")
    parser.add_argument(
        "--max-examples", type=int, help="analyse at most this many examples (default: all)"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="examples per model call")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pairs and of the masking")
    parser.add_argument(
        "--paper", choices=("tiny", "base"), help="add the paper's column (default: none)"
    )
    parser.add_argument(
        "--heatmap-sentences",
        type=int,
        default=6,
        help="corpus sentences drawn in the heat-map when no --text is given",
    )
    parser.add_argument("--json", action="store_true", help="print --text results as JSON (default: a table)")
    return parser


def validate_args(args, parser):
    if not args.text and not args.corpus:
        parser.error("give --text and/or --corpus")
    if args.corpus and not args.out:
        parser.error("--corpus needs --out")
    if args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out} is an existing file, not a folder")
    for path in args.corpus or ():
        if os.path.isdir(path):
            parser.error(f"corpus file {path} is a folder: give the text files in it")
        if not os.path.isfile(path):
            parser.error(f"corpus file not found: {path}")
        problem = _not_utf8(path)
        if problem:
            parser.error(f"corpus file {path} is not UTF-8 text ({problem})")
    names = ("batch_size", "heatmap_sentences", "ngram_masking", "sequence_length")
    names += ("max_predictions", "max_examples")
    for name in names:
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.sequence_length is not None and args.sequence_length < 8:
        parser.error("--sequence-length must be at least 8")
    if not args.model.startswith(("hf://", "gs://")) and not os.path.exists(args.model):
        parser.error(f"--model {args.model}: no such file or directory")


def _not_utf8(path, chunk_size=1 << 20):
    """Why `path` is not UTF-8 text (`None` when it is)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as file:
        while chunk := file.read(chunk_size):
            nul = chunk.find(b"\0")
            if nul >= 0:
                return f"a NUL byte at offset {offset + nul}: a binary file?"
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                return f"byte {offset + error.start}: {error.reason}"
            offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        return f"byte {offset + error.start}: {error.reason}"
    return None


def _one_line(error):
    """An exception as one line (its first non-empty line)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def heatmap_sentences(documents, count, min_tokens=6, max_tokens=28, depth_reader=None):
    """The first `count` corpus sentences of `min_tokens` to `max_tokens` pieces."""
    sentences = [s for document in documents for s in document]
    chosen = []
    for start in range(0, len(sentences), 64):
        batch = sentences[start : start + 64]
        for sentence, ids in zip(batch, depth_reader.tokenize(batch), strict=True):
            if min_tokens <= len(ids) <= max_tokens:
                chosen.append(sentence)
                if len(chosen) == count:
                    return chosen
    return chosen


def run(args):
    from keras_act.analysis.corpus import EmptyCorpusError, corpus_depth_statistics
    from keras_act.analysis.loading import load_depth_reader
    from keras_act.analysis.plots import (
        plot_category_histograms,
        plot_depth_heatmap,
        plot_depth_profiles,
    )
    from keras_act.analysis.report import PAPER_MEAN_UPDATES, statistics_markdown, write_statistics
    from keras_act.analysis.sentence_depth import format_depth_table, sentence_depths

    try:
        depth_reader = load_depth_reader(args.model, vocab=args.vocab)
    except Exception as error:  # any failure to load is a setup error: one line
        raise SetupError(f"cannot load --model {args.model}: {_one_line(error)}") from error
    sequence_length = args.sequence_length or min(
        DEFAULT_SEQUENCE_LENGTH, depth_reader.max_sequence_length
    )
    if sequence_length > depth_reader.max_sequence_length:
        raise SetupError(
            f"--sequence-length {sequence_length} exceeds the model's max_sequence_length "
            f"{depth_reader.max_sequence_length} (leave it out to use the model's)"
        )
    if args.out:
        try:
            os.makedirs(args.out, exist_ok=True)
        except OSError as error:
            raise SetupError(f"cannot create --out {args.out}: {error.strerror}") from error

    depths = sentence_depths(depth_reader, args.text) if args.text else []
    if depths:
        if args.json:
            print(json.dumps([d.to_dict() for d in depths], indent=2))
        else:
            for depth in depths:
                print(format_depth_table(depth, max_layers=depth_reader.max_layers))
                print()

    if args.corpus:
        from keras_act.data.text_corpus import read_documents

        try:
            documents = read_documents(args.corpus)
        except (OSError, ValueError) as error:
            raise SetupError(f"--corpus: {_one_line(error)}") from error
        start = time.time()
        try:
            statistics = corpus_depth_statistics(
                depth_reader,
                documents,
                sequence_length=sequence_length,
                max_predictions=args.max_predictions,
                seed=args.seed,
                max_ngram=args.ngram_masking,
                batch_size=args.batch_size,
                max_examples=args.max_examples,
                progress=_progress,
            )
        except EmptyCorpusError as error:
            raise SetupError(f"--corpus {' '.join(args.corpus)}: {error}") from error
        truncated = getattr(depth_reader, "truncated_sentences", 0)
        if truncated:
            print(
                f"{PROG}: warning: {truncated} sentence(s) have a single word longer than the "
                "export's sequence length; they were cut to it",
                file=sys.stderr,
            )
        seconds = time.time() - start
        write_statistics(
            statistics,
            args.out,
            paper=args.paper,
            model=args.model,
            corpus=list(args.corpus),
            sequence_length=sequence_length,
            seed=args.seed,
            ngram_masking=args.ngram_masking,
            max_layers=depth_reader.max_layers,
            truncated_sentences=truncated,
        )
        paper_means = PAPER_MEAN_UPDATES[args.paper] if args.paper else None
        plot_category_histograms(
            statistics, os.path.join(args.out, HISTOGRAMS_FILE), paper_means=paper_means
        )
        plot_depth_profiles(statistics, os.path.join(args.out, PROFILES_FILE))
        if not depths:
            chosen = heatmap_sentences(documents, args.heatmap_sentences, depth_reader=depth_reader)
            depths = sentence_depths(depth_reader, chosen) if chosen else []
        print(statistics_markdown(statistics, paper=args.paper))
        print(f"{statistics.num_examples} examples analysed in {seconds:.1f} s; wrote {args.out}")

    if args.out and depths:
        plot_depth_heatmap(depths, os.path.join(args.out, HEATMAP_FILE), max_layers=depth_reader.max_layers)
        with open(os.path.join(args.out, SENTENCES_FILE), "w", encoding="utf-8") as file:
            json.dump([d.to_dict() for d in depths], file, indent=2)
    return depths


def _progress(done, total):
    """One line on stderr every 10%% of the corpus."""
    if total and (done == total or done * 10 // total != (done - 1) * 10 // total):
        print(f"{PROG}: {done}/{total} examples", file=sys.stderr, flush=True)


def main(argv=None):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    validate_args(args, parser)
    try:
        run(args)
    except SetupError as error:
        parser.exit(2, f"{PROG}: error: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
