"""`python -m keras_act.export --model PATH --out saved_models/NAME`."""

import argparse
import os
import sys

PROG = "python -m keras_act.export"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, unless its help already says it."""

    def _get_help_string(self, action):
        if "default" in (action.help or "") or action.required:
            return action.help
        return super()._get_help_string(action)


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Export a keras-act model with its in-graph tokenizer as a TensorFlow "
            "Serving SavedModel version (saved_models/NAME/<version>/)."
        ),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--model",
        required=True,
        help=(
            "required: a .keras file (a task carrying its preprocessor, or a model "
            "such as AlbertActPretrainer with --vocab) or a preset directory written "
            "by save_to_preset (backbone + tokenizer, or a task)"
        ),
    )
    parser.add_argument(
        "--out",
        required=True,
        help="required: the model's base folder, saved_models/NAME (created if needed; "
        "each export adds a version folder)",
    )
    parser.add_argument(
        "--vocab",
        help="tokenizer: a SentencePiece model file or a preset directory with "
        "tokenizer.json (default: the model's own tokenizer or preprocessor)",
    )
    parser.add_argument(
        "--sequence-length",
        type=int,
        help="texts are truncated and padded to this many tokens (default: the "
        "preprocessor's, else the model's max_sequence_length)",
    )
    parser.add_argument(
        "--version", type=int, help="version number (default: the next free one, 1 in a new folder)"
    )
    parser.add_argument(
        "--pair",
        action="store_true",
        help="serve sentence pairs (text, text_pair) through a preprocessor of one "
        "or more texts (pair preprocessors always take them)",
    )
    parser.add_argument("--top-k", type=int, default=5, help="fills per [MASK] of a masked LM")
    parser.add_argument(
        "--warmup-text",
        action="append",
        dest="warmup_texts",
        help="a warm-up text (repeatable; for pair models 'first|||second', for a "
        "question answerer 'question|||context', for multiple choice "
        "'prompt|||choice|||choice...'; default: the model's example texts)",
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="skip loading the export back and running its warm-up requests",
    )
    parser.add_argument(
        "--no-depth-budget",
        action="store_true",
        help="signatures without the optional max_layers / halting_threshold inputs "
        "(the graph of an export before they existed)",
    )
    parser.add_argument(
        "--no-batching-parameters",
        action="store_true",
        help="do not time the export nor write batching_parameters.txt",
    )
    return parser


def _split_warmup_texts(texts, model, preprocessing, pair):
    """`--warmup-text` values as the signature's inputs: `a|||b` is a pair
    (sentence pair, question and context), `prompt|||c1|||c2` a prompt and
    its choices."""
    from keras_act.export.heads import registered_head_class

    head_cls = registered_head_class(model)
    names = getattr(head_cls, "text_input_names", None)
    if getattr(head_cls, "text_input_ranks", None) == (1, 2):
        return [(text.split("|||")[0], text.split("|||")[1:]) for text in texts]
    if pair or (names is None and getattr(preprocessing, "num_segments", 1) == 2) or (
        names is not None and len(names) == 2
    ):
        return [tuple(text.split("|||", 1)) if "|||" in text else (text, text) for text in texts]
    return texts


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return _export(args)
    except (ValueError, OSError) as error:
        # Setup errors (paths, files, arguments): one line, no traceback.
        raise SystemExit(f"{PROG}: error: {_one_line(error)}") from None


def _one_line(error):
    return " ".join(str(error).split()) or type(error).__name__


def _export(args):
    from keras_act.export import export_saved_model
    from keras_act.export.atomic import check_base_dir
    from keras_act.model_loading import load_model

    check_base_dir(args.out)  # before loading the model
    model, preprocessing = load_model(args.model, vocab=args.vocab, require_preprocessing=True)
    texts = args.warmup_texts
    if texts:
        texts = _split_warmup_texts(texts, model, preprocessing, args.pair)
    path = export_saved_model(
        model,
        preprocessing,
        args.out,
        version=args.version,
        sequence_length=args.sequence_length,
        warmup_texts=texts,
        pair=True if args.pair else None,
        top_k=args.top_k,
        verify=not args.no_verify,
        depth_budget_inputs=not args.no_depth_budget,
        measure_batching=not args.no_batching_parameters,
    )
    print(f"Exported {type(model).__name__} to {path}")
    print(
        "Signatures: serving_default (raw text), serve_token_ids (token ids); "
        f"see {os.path.join(args.out, 'models.config')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
