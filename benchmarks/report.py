"""The benchmarks' printed table: every figure of a run, one line per model or workload."""


def format_table(results):
    """The figures of `results` as the printed table."""
    lines = []
    m = results["machine"]
    lines.append(
        f"ALBERT-ACT benchmarks ({results['mode']}): {m['cpu']}, {m['cores']} cores, "
        f"TF {m['tensorflow']}, Keras {m['keras']}, keras-hub {m['keras_hub']}"
    )
    inference = results["inference"]
    first = next(iter(inference.values()))
    lines.append(
        f"matmul peak ({results['config']['matmul_size']}^3 fp32): "
        f"{first['matmul_peak_gflops']:.0f} GFLOP/s"
    )
    lines.append("")
    lines.append("Inference (tf.function, no XLA), cap 24; tokens/s of the best round (median)")
    header = (
        f"{'batch':>7} {'depth mean/max/at cap':>22} {'model':>22} {'tokens/s':>16} {'ms/block':>9}"
    )
    lines.append(header)
    names = {
        "act_dense": "ALBERT-ACT dense",
        "act_skip": "ALBERT-ACT skip",
        "keras_hub_12": "keras-hub 12 layers",
        "keras_hub_24": "keras-hub 24 layers",
    }
    for key, f in inference.items():
        d = f["depth"]
        depth = f"{d['mean']:.2f}/{d['max']}/{100 * d['fraction_at_cap']:.1f}%"
        for model, label in names.items():
            per_block = f["ms_per_block_application"].get(model)
            lines.append(
                f"{key:>7} {depth:>22} {label:>22} "
                f"{f['tokens_per_second'][model]:>7.0f} ({f['tokens_per_second_median'][model]:>6.0f})"
                f" {'' if per_block is None else f'{per_block:9.1f}'}"
            )
            depth = ""
        lines.append(
            f"{'':>7} useful GFLOP/s: skip {f['useful_gflops']['act_skip']:.0f}, "
            f"dense {f['useful_gflops']['act_dense']:.0f}; ratios: "
            + ", ".join(f"{k} {v:.2f}" for k, v in f["ratios"].items())
        )
    profile = first.get("profile")
    if profile:
        lines.append(
            f"profile: FFN hidden->intermediate as EinsumDense {profile['ffn_einsum_dense_gflops']:.0f}"
            f" GFLOP/s vs 2-D matmul {profile['ffn_matmul_gflops']:.0f}; skip path / its matmuls"
            f" {profile['skip_over_its_matmul_floor']:.2f}, keras-hub 12 / its matmuls "
            f"{profile['keras_hub_12_over_its_matmul_floor']:.2f}"
        )
    lines.append("")
    lines.append(
        "Training step (dense path, Adam, MLM + SOP + ponder cost); tokens/s (first call s)"
    )
    for preset, f in results["training"].items():
        lines.append(
            f"{preset:>16} cap {f['max_layers']:>2} batch {f['batch']}x{f['sequence_length']} "
            f"mean depth {f['mean_depth']:.2f}: no XLA {f['tokens_per_second']['no_xla']:.0f} "
            f"({f['first_call_seconds']['no_xla']:.0f} s), XLA {f['tokens_per_second']['xla']:.0f} "
            f"({f['first_call_seconds']['xla']:.0f} s)"
        )
    lines.append("")
    lines.append(
        "Peak RSS (MiB), one child process each: whole process, peak during the first "
        "call alone, RSS before the first call"
    )
    for name, f in results["memory"].items():
        first_call = f["first_call_peak_rss_mib"]
        first_call = "n/a" if first_call is None else f"{first_call:.0f}"
        lines.append(
            f"{name:>48} {f['peak_rss_mib']:6.0f} {first_call:>6} "
            f"{f['rss_before_first_call_mib']:6.0f}"
        )
    lines.append("")
    lines.append("Targets (ratios of this run)")
    for t in results["targets"]:
        lines.append(
            f"  {'MET ' if t['met'] else 'MISS'} {t['name']}: {t['value']:.2f} (target {t['target']})"
        )
    return "\n".join(lines)
