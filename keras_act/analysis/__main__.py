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
import json
import os
import sys
import time

HEATMAP_FILE = "depth_heatmap.png"
HISTOGRAMS_FILE = "depth_histograms.png"
PROFILES_FILE = "depth_profiles.png"
SENTENCES_FILE = "sentence_depths.json"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_act.analysis",
        description="Per-token depth (number of ACT updates) of an ALBERT-ACT model.",
    )
    parser.add_argument(
        "--model",
        required=True,
        help="preset directory, .keras file, authors' checkpoint folder (or hf://...), "
        "or exported SavedModel (version or base folder)",
    )
    parser.add_argument("--vocab", help="SentencePiece model or tokenizer preset directory")
    parser.add_argument("--text", action="append", default=[], help="a sentence (repeatable)")
    parser.add_argument("--corpus", nargs="+", help="plain-text corpus files to analyse")
    parser.add_argument("--out", help="output folder of the tables and pictures")
    parser.add_argument("--sequence-length", type=int, default=128, help="packed length (corpus)")
    parser.add_argument("--max-predictions", type=int, help="MLM targets per example (default 15%%)")
    parser.add_argument("--ngram-masking", type=int, default=1, help="longest masked n-gram")
    parser.add_argument("--max-examples", type=int, help="analyse at most this many examples")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0, help="seed of the pairs and of the masking")
    parser.add_argument("--paper", choices=("tiny", "base"), help="add the paper's column")
    parser.add_argument(
        "--heatmap-sentences",
        type=int,
        default=6,
        help="corpus sentences drawn in the heat-map when no --text is given",
    )
    parser.add_argument("--json", action="store_true", help="print --text results as JSON")
    return parser


def validate_args(args, parser):
    if not args.text and not args.corpus:
        parser.error("give --text and/or --corpus")
    if args.corpus and not args.out:
        parser.error("--corpus needs --out")
    for path in args.corpus or ():
        if not os.path.isfile(path):
            parser.error(f"corpus file not found: {path}")
    for name in ("sequence_length", "batch_size", "heatmap_sentences", "ngram_masking"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.sequence_length < 8:
        parser.error("--sequence-length must be at least 8")


def heatmap_sentences(documents, count, min_tokens=6, max_tokens=28, depth_model=None):
    """The first `count` corpus sentences of `min_tokens` to `max_tokens` pieces."""
    sentences = [s for document in documents for s in document]
    chosen = []
    for start in range(0, len(sentences), 64):
        batch = sentences[start : start + 64]
        for sentence, ids in zip(batch, depth_model.tokenize(batch), strict=True):
            if min_tokens <= len(ids) <= max_tokens:
                chosen.append(sentence)
                if len(chosen) == count:
                    return chosen
    return chosen


def run(args):
    from keras_act.analysis.corpus import corpus_depth_statistics
    from keras_act.analysis.loading import load_depth_model
    from keras_act.analysis.plots import (
        plot_category_histograms,
        plot_depth_heatmap,
        plot_depth_profiles,
    )
    from keras_act.analysis.report import PAPER_MEAN_UPDATES, statistics_markdown, write_statistics
    from keras_act.analysis.sentence_depth import format_depth_table, sentence_depths

    depth_model = load_depth_model(args.model, vocab=args.vocab)
    if args.out:
        os.makedirs(args.out, exist_ok=True)

    depths = sentence_depths(depth_model, args.text) if args.text else []
    if depths:
        if args.json:
            print(json.dumps([d.to_dict() for d in depths], indent=2))
        else:
            for depth in depths:
                print(format_depth_table(depth, max_layers=depth_model.max_layers))
                print()

    if args.corpus:
        from training.text_corpus import read_documents

        documents = read_documents(args.corpus)
        start = time.time()
        statistics = corpus_depth_statistics(
            depth_model,
            documents,
            sequence_length=args.sequence_length,
            max_predictions=args.max_predictions,
            seed=args.seed,
            max_ngram=args.ngram_masking,
            batch_size=args.batch_size,
            max_examples=args.max_examples,
        )
        seconds = time.time() - start
        write_statistics(
            statistics,
            args.out,
            paper=args.paper,
            model=args.model,
            corpus=list(args.corpus),
            sequence_length=args.sequence_length,
            seed=args.seed,
            ngram_masking=args.ngram_masking,
            max_layers=depth_model.max_layers,
        )
        paper_means = PAPER_MEAN_UPDATES[args.paper] if args.paper else None
        plot_category_histograms(
            statistics, os.path.join(args.out, HISTOGRAMS_FILE), paper_means=paper_means
        )
        plot_depth_profiles(statistics, os.path.join(args.out, PROFILES_FILE))
        if not depths:
            chosen = heatmap_sentences(documents, args.heatmap_sentences, depth_model=depth_model)
            depths = sentence_depths(depth_model, chosen) if chosen else []
        print(statistics_markdown(statistics, paper=args.paper))
        print(f"{statistics.num_examples} examples analysed in {seconds:.1f} s; wrote {args.out}")

    if args.out and depths:
        plot_depth_heatmap(depths, os.path.join(args.out, HEATMAP_FILE), max_layers=depth_model.max_layers)
        with open(os.path.join(args.out, SENTENCES_FILE), "w", encoding="utf-8") as file:
            json.dump([d.to_dict() for d in depths], file, indent=2)
    return depths


def main(argv=None):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    validate_args(args, parser)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
