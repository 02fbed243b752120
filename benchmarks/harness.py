"""The benchmarks' harness: progress, interleaved timing, child-process memory probes, JSON.

Nothing here knows ALBERT-ACT: it times functions against each other in one
run (so that every target is a ratio of two figures of the same run), reads
a process's peak RSS from its own `/proc/self/status`, describes the machine
and writes the figures.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_START = time.perf_counter()


def progress(message):
    """One line of progress on stderr, with the seconds since the start."""
    print(f"[{time.perf_counter() - _START:.0f} s] {message}", file=sys.stderr, flush=True)


# === Timing ===


def run_once(function, *args):
    """Seconds of one call of `function(*args)`, its outputs copied to NumPy."""
    import tensorflow as tf

    start = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy(), function(*args))
    return time.perf_counter() - start


def interleaved(functions, rounds, label=""):
    """Seconds per call of each `name: (function, args)`, over interleaved rounds.

    Each function is traced and called once first; then every round calls
    each function once, in turn, so that a noisy neighbour slows them alike.

    Returns:
        `{name: [seconds of each round]}`.
    """
    for name, (function, args) in functions.items():  # trace, warm caches
        progress(f"{label}: tracing and first call of {name}")
        run_once(function, *args)
    seconds = {name: [] for name in functions}
    for index in range(rounds):
        for name, (function, args) in functions.items():
            seconds[name].append(run_once(function, *args))
        progress(f"{label}: round {index + 1}/{rounds} timed")
    return seconds


def summary(samples):
    """`{"best", "median", "samples"}` of a list of seconds."""
    import numpy as np

    return {"best": min(samples), "median": float(np.median(samples)), "samples": samples}


def timed_summaries(functions, rounds, label=""):
    """`interleaved` timing, summarised: `{name: summary}`."""
    return {name: summary(s) for name, s in interleaved(functions, rounds, label).items()}


# === Peak memory, read in a fresh child process ===


def process_status_mib(field):
    """`VmRSS` (current) or `VmHWM` (peak) of this process, in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss():
    """Resets `VmHWM` to the current RSS (Linux >= 4.0); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def first_call_memory(function, args):
    """In the measured (child) process: peak RSS around the first call.

    Returns:
        `{"rss_before_first_call_mib", "peak_rss_mib",
        "first_call_peak_rss_mib"}` (the last is `None` where the
        high-water mark cannot be reset).
    """
    before = process_status_mib("VmRSS")
    peak_before = process_status_mib("VmHWM")
    reset = reset_peak_rss()
    run_once(function, *args)
    peak = process_status_mib("VmHWM")
    return {
        "rss_before_first_call_mib": before,
        "peak_rss_mib": max(peak, peak_before),
        "first_call_peak_rss_mib": peak if reset else None,
    }


def run_in_child(script, spec):
    """Runs `python SCRIPT --child SPEC_JSON --child-out FILE`; returns FILE's JSON.

    The child measures its own peak RSS (`first_call_memory`): `ru_maxrss`
    from `wait4`/`getrusage` would not do, since on Linux a child inherits
    its parent's high-water mark across fork and exec.
    """
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "child.json"
        subprocess.run(
            [sys.executable, str(script), "--child", json.dumps(spec), "--child-out", str(out)],
            stdout=subprocess.DEVNULL,
            check=True,
        )
        return json.loads(out.read_text())


# === Report ===


def machine():
    """The CPU, core count and library versions of this run."""
    import keras
    import keras_hub
    import tensorflow as tf

    model = platform.processor() or "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or "default",
    }


def evaluate_targets(ratios, targets, suffix):
    """Each `(description, ratio name, ">=" or "<=", threshold)` against `ratios`.

    Returns:
        A list of `{"name", "figure", "value", "target", "met"}`.
    """
    results = []
    for description, name, comparison, threshold in targets:
        value = ratios[name]
        met = value >= threshold if comparison == ">=" else value <= threshold
        results.append(
            dict(
                name=f"{description}, {suffix}",
                figure=f"{name}_{suffix}",
                value=value,
                target=f"{comparison} {threshold}",
                met=bool(met),
            )
        )
    return results


def write_json(path, results):
    """Writes `results` (indented JSON) to `path`, making its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))


def flat_ratios(figures_by_key):
    """`{f"{ratio}_{key}": value}` over the `"ratios"` of each `{key: figures}`.

    >>> flat_ratios({"8x128": {"ratios": {"skip_over_dense": 2.0}}})
    {'skip_over_dense_8x128': 2.0}
    """
    ratios = {}
    for key, figures in figures_by_key.items():
        for name, value in figures["ratios"].items():
            ratios[f"{name}_{key}"] = value
    return ratios
