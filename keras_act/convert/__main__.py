"""`python -m keras_act.convert SRC OUT`: convert an authors' checkpoint.

SRC is a checkpoint folder in the Hugging Face layout (`config.json` plus
`model.safetensors`, `pytorch_model.bin` or `tf_model.h5`), a weight file in
one, or `hf://asi/albert-act-base`. OUT is a preset directory (loadable with
`keras_act.AlbertActBackbone.from_preset(OUT)`), or a `.keras` file.
"""

import argparse
import os
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m keras_act.convert",
        description="Convert an ALBERT-ACT checkpoint (Hugging Face layout) to Keras.",
    )
    parser.add_argument("src", help="checkpoint folder, weight file, or hf://owner/name")
    parser.add_argument("out", help="output preset directory, or a .keras file")
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
    args = parser.parse_args(argv)
    if args.pretraining_heads and not args.out.endswith(".keras"):
        parser.error("--pretraining-heads needs OUT to be a .keras file")

    from keras_act.convert import load_hf_checkpoint

    model = load_hf_checkpoint(
        args.src,
        pretraining_heads=args.pretraining_heads,
        transpose_pooler=args.transpose_pooler,
    )
    if args.out.endswith(".keras"):
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        model.save(args.out)
    else:
        model.save_to_preset(args.out)
    print(f"Converted {args.src} -> {args.out} ({model.count_params():,} parameters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
