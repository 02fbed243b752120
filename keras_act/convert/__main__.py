"""`python -m keras_act.convert SRC OUT`: convert an authors' or a plain ALBERT checkpoint.

SRC is a checkpoint folder in the Hugging Face layout (`config.json` plus
`model.safetensors`, `pytorch_model.bin` or `tf_model.h5`), a weight file in
one, or `hf://asi/albert-act-base`; a plain ALBERT (`hf://albert-base-v2`)
gets a new halting unit (`--initial-depth`, `--max-layers`), as does a
keras-hub `AlbertBackbone` preset folder (`from_keras_hub_albert`). With
`--to-hf` the other way: SRC is a keras-act model (`.keras` file, preset or
checkpoint), OUT a folder in the authors' layout (`save_hf_checkpoint`). OUT is a preset directory (loadable with
`keras_act.AlbertActBackbone.from_preset(OUT)`), or a `.keras` file. As in
the other command-line tools, `--model SRC --out OUT` works too.

The output is written beside OUT first and then moved into place, so an
existing preset is replaced whole (no file of the old preset, such as its
tokenizer, stays beside the new backbone) and a killed conversion leaves the
old OUT as it was. Every setup error is one line on stderr (exit status 2).
"""

import argparse
import os
import shutil
import sys

from keras_act.atomic_files import save_model_atomically, write_folder_atomically

PROG = "python -m keras_act.convert"
# Files that make a folder a preset (written by `save_to_preset`).
PRESET_FILES = ("config.json", "metadata.json")


def fail(message):
    """Ends the command with a one-line error."""
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(2)


class _Parser(argparse.ArgumentParser):
    """`parse_args` that takes options between SRC and OUT, and one-line errors."""

    _parsing = False

    def parse_known_args(self, args=None, namespace=None):
        # `SRC --pretraining-heads OUT`: plain argparse takes SRC alone as
        # the first chunk of positionals, and then refuses OUT.
        if self._parsing:
            return super().parse_known_args(args, namespace)
        self._parsing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._parsing = False

    def error(self, message):  # argparse's own errors: one line too
        fail(f"{message} (see --help)")


def build_parser():
    parser = _Parser(
        prog=PROG,
        description=(
            "Convert an ALBERT-ACT or plain ALBERT checkpoint (Hugging Face "
            "layout) to a Keras preset folder or .keras file."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "src",
        nargs="?",
        metavar="SRC",
        help="checkpoint folder, weight file, or hf://owner/name (or --model)",
    )
    parser.add_argument(
        "out",
        nargs="?",
        metavar="OUT",
        help="output preset folder, or a .keras file (or --out)",
    )
    parser.add_argument(
        "--model",
        metavar="SRC",
        help="the checkpoint, as SRC (the spelling of the other tools)",
    )
    parser.add_argument("--out", dest="out_option", metavar="OUT", help="the output, as OUT")
    parser.add_argument(
        "--pretraining-heads",
        action="store_true",
        help="also convert the MLM and SOP heads (OUT must then be a .keras file)",
    )
    parser.add_argument(
        "--transpose-pooler",
        action="store_true",
        help="read pooler.weight as [in, out] (see load_hf_checkpoint)",
    )
    parser.add_argument(
        "--to-hf",
        action="store_true",
        help="the other direction: SRC is a keras-act model (.keras file, preset, "
        "checkpoint), OUT a folder in the authors' layout (config.json + "
        "model.safetensors); a pretrainer keeps its MLM and SOP heads",
    )
    parser.add_argument(
        "--initial-depth",
        type=int,
        metavar="N",
        help="plain ALBERT only: the depth every token starts at under the new "
        "halting unit (default: half of --max-layers, rounded up)",
    )
    parser.add_argument(
        "--max-layers",
        type=int,
        metavar="N",
        help="plain ALBERT only: the ACT cap (default: its num_hidden_layers)",
    )
    return parser


def _one_of(positional, option, name, flag):
    if positional and option and positional != option:
        fail(f"{name} given twice, differently: {positional!r} and {flag} {option!r}")
    value = positional or option
    if not value:
        fail(f"missing {name}: pass `{PROG} SRC OUT` or `{flag} ...`")
    return value


def check_output(out, pretraining_heads):
    """Refuses an OUT that cannot be written or must not be replaced."""
    if out.endswith(".keras"):
        if os.path.isdir(out):
            fail(f"OUT {out} is a folder; a .keras output must be a file")
        return
    if pretraining_heads:
        fail("--pretraining-heads needs OUT to be a .keras file")
    if os.path.exists(out) and not os.path.isdir(out):
        fail(f"OUT {out} is an existing file; a preset is written to a folder")
    if os.path.isdir(out) and os.listdir(out) and not any(
        os.path.isfile(os.path.join(out, name)) for name in PRESET_FILES
    ):
        fail(
            f"OUT {out} is a folder that holds no preset (no {' or '.join(PRESET_FILES)}); "
            "refusing to replace it: pass a new or empty folder"
        )


def _remove_leftovers(parent, base):
    """Removes what a killed conversion to the same OUT left beside it."""
    for name in os.listdir(parent):
        if name.startswith((f".{base}.converting-", f".{base}.replaced-")):
            path = os.path.join(parent, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)


def write_output(model, out):
    """Saves `model` to OUT through a temporary path beside it.

    A preset folder is written whole to `.OUT.converting-*`, then swapped
    with the old OUT (renames within one folder), so it never mixes files of
    two conversions; a `.keras` file replaces the old one atomically.
    """
    out = os.path.abspath(out)
    parent, base = os.path.dirname(out), os.path.basename(out)
    os.makedirs(parent, exist_ok=True)
    _remove_leftovers(parent, base)
    staging = f".{base}.converting-"
    if out.endswith(".keras"):
        save_model_atomically(model, out, prefix=staging)
    else:
        write_folder_atomically(
            out, model.save_to_preset, prefix=staging, old_prefix=f".{base}.replaced-"
        )


def export_to_hf(src, out, args):
    """`--to-hf`: writes SRC in the authors' layout (`save_hf_checkpoint`)."""
    for flag, value in (
        ("--pretraining-heads", args.pretraining_heads),
        ("--transpose-pooler", args.transpose_pooler),
        ("--initial-depth", args.initial_depth is not None),
        ("--max-layers", args.max_layers is not None),
    ):
        if value:
            fail(f"{flag} applies to an import; --to-hf exports SRC as it is")
    from keras_act.convert.hf_export import save_hf_checkpoint
    from keras_act.model_loading import albert_act_backbone_of, load_model
    from keras_act.models.albert_act_pretrainer import AlbertActPretrainer

    try:
        model, _ = load_model(src)
        if not isinstance(model, AlbertActPretrainer):
            model = albert_act_backbone_of(model, src)
        save_hf_checkpoint(model, out)
    except (OSError, ValueError, ImportError) as error:
        fail(error)
    what = "AlbertActForPreTraining" if isinstance(model, AlbertActPretrainer) else "AlbertActModel"
    print(f"Wrote {src} -> {out} ({what}: config.json + model.safetensors, the authors' layout)")
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    src = _one_of(args.src, args.model, "SRC", "--model")
    out = _one_of(args.out, args.out_option, "OUT", "--out")
    if args.to_hf:
        return export_to_hf(src, out, args)
    check_output(out, args.pretraining_heads)

    from keras_act.convert.hf_checkpoint import (
        HubUnreachableError,
        backbone_config_from_hf,
        load_hf_checkpoint,
        ponder_weight_for,
        read_hf_config,
        resolve_checkpoint,
    )

    for flag, value in (("--initial-depth", args.initial_depth), ("--max-layers", args.max_layers)):
        if value is not None and value < 1:
            fail(f"{flag} must be at least 1, got {value}")
    from keras_act.convert.keras_hub_albert import from_keras_hub_albert, is_keras_hub_albert_preset

    if os.path.isdir(src) and is_keras_hub_albert_preset(src):
        if args.pretraining_heads or args.transpose_pooler:
            fail("a keras-hub AlbertBackbone preset has no pre-training heads and no PyTorch pooler")
        try:
            model = from_keras_hub_albert(
                src, initial_depth=args.initial_depth, max_layers=args.max_layers
            )
            write_output(model, out)
        except (OSError, ValueError) as error:
            fail(error)
        print(f"Converted the keras-hub AlbertBackbone {src} -> {out} ({model.count_params():,} parameters)")
        return 0
    try:
        config_path, weight_file = resolve_checkpoint(src)
        if not os.path.isfile(config_path):
            fail(f"no config.json next to {weight_file}")
        hf_config = read_hf_config(config_path)
        backbone_config = backbone_config_from_hf(hf_config, max_layers=args.max_layers)
        tau, source = ponder_weight_for(hf_config, backbone_config)
        model = load_hf_checkpoint(
            weight_file,
            pretraining_heads=args.pretraining_heads,
            transpose_pooler=args.transpose_pooler,
            initial_depth=args.initial_depth,
            max_layers=args.max_layers,
        )
    except (OSError, ValueError, ImportError, HubUnreachableError) as error:
        fail(error)
    try:
        write_output(model, out)
    except OSError as error:
        fail(f"cannot write {out}: {error}")
    print(
        f"Converted {src} -> {out} ({model.count_params():,} parameters; "
        f"ponder weight {tau:g}, from {source})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
