"""The benchmarks' harness: progress, interleaved timing, child-process memory probes, JSON.

Nothing here knows ALBERT-ACT: it times functions against each other in one
run (so that every target is a ratio of two figures of the same run), reads
a process's peak RSS from its own `/proc/self/status`, describes the machine
and writes the figures.
"""

import json
import os
import platform
import re
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


def unavailable(error):
    """`"unavailable: <reason>"` for a path that cannot run.

    The reason is the message's last non-empty line before the arguments
    Keras lists: a `tf.function` puts the traceback of the user code first
    and the error itself last.

    >>> unavailable(ValueError("in user code:\\n\\n    File x\\n\\n    ValueError: no ladder"))
    'unavailable: ValueError: no ladder'
    >>> unavailable(ValueError("Exception encountered when calling AlbertAct.call().\\n\\n"
    ...     "\\x1b[1mBad value\\x1b[0m\\n\\nArguments received by AlbertAct.call():\\n  • x=1"))
    'unavailable: ValueError: Bad value'
    """
    # Keras appends the call's arguments ("Arguments received by ...") after the error.
    # Keras also makes its message bold (ANSI escapes).
    message = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).split("Arguments received by")[0]
    lines = [line.strip() for line in message.splitlines() if line.strip()] or [""]
    last = lines[-1]
    name = type(error).__name__
    if not last.startswith(f"{name}:"):
        last = f"{name}: {last}"
    return f"unavailable: {last[:300]}"


def first_calls(functions, label=""):
    """Traces and calls each `name: (function, args)` once (compilation included).

    A function whose first call raises is left out and reported, so that a
    path not built yet (or refused in this context) reads as
    "unavailable: <reason>" instead of ending the run.

    Returns:
        `(working, outputs, seconds, unavailable_reasons)`: the functions
        that ran, `{name: first outputs as NumPy}`, `{name: seconds of the
        first call}` and `{name: "unavailable: ..."}`.
    """
    import tensorflow as tf

    working, outputs, seconds, reasons = {}, {}, {}, {}
    for name, (function, args) in functions.items():
        progress(f"{label}: tracing and first call of {name}")
        start = time.perf_counter()
        try:
            result = tf.nest.map_structure(lambda t: t.numpy(), function(*args))
        except Exception as error:  # reported, not raised: see the docstring
            reasons[name] = unavailable(error)
            progress(f"{label}: {name} {reasons[name]}")
            continue
        seconds[name] = time.perf_counter() - start
        working[name] = (function, args)
        outputs[name] = result
    return working, outputs, seconds, reasons


def interleaved(functions, rounds, label="", warm_up=True):
    """Seconds per call of each `name: (function, args)`, over interleaved rounds.

    Each function is traced and called once first (unless `warm_up` is
    false: `first_calls` did it); then every round calls each function
    once, in turn, so that a noisy neighbour slows them alike.

    Returns:
        `{name: [seconds of each round]}`.
    """
    if warm_up:
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


def timed_summaries(functions, rounds, label="", warm_up=True):
    """`interleaved` timing, summarised: `{name: summary}`."""
    return {
        name: summary(s)
        for name, s in interleaved(functions, rounds, label, warm_up).items()
    }


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


def gpu_peak_reset():
    """Resets the first GPU's peak-memory counter; its name, or None without a GPU."""
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return None
    tf.config.experimental.reset_memory_stats("GPU:0")
    return "GPU:0"


def first_call_memory(function, args):
    """In the measured (child) process: peak RSS around the first call.

    On a GPU, also the device's peak memory during the call
    (`gpu_peak_mib`, from `tf.config.experimental.get_memory_info`).

    Returns:
        `{"rss_before_first_call_mib", "peak_rss_mib",
        "first_call_peak_rss_mib", "gpu_peak_mib"}` (the third is `None`
        where the high-water mark cannot be reset, the last without a GPU).
    """
    import tensorflow as tf

    before = process_status_mib("VmRSS")
    peak_before = process_status_mib("VmHWM")
    reset = reset_peak_rss()
    gpu = gpu_peak_reset()
    run_once(function, *args)
    peak = process_status_mib("VmHWM")
    gpu_peak = tf.config.experimental.get_memory_info(gpu)["peak"] / 2**20 if gpu else None
    return {
        "rss_before_first_call_mib": before,
        "peak_rss_mib": max(peak, peak_before),
        "first_call_peak_rss_mib": peak if reset else None,
        "gpu_peak_mib": gpu_peak,
    }


def call_memory(function, args):
    """`first_call_memory`, then the same around a second call (no tracing).

    The second call's figures (`second_call_*`) are those of a step in a
    running job; `second_call_increase_mib` is its peak RSS over the RSS
    just before it (what the call itself holds at its peak).
    """
    import tensorflow as tf

    figures = first_call_memory(function, args)
    before = process_status_mib("VmRSS")
    reset = reset_peak_rss()
    gpu = gpu_peak_reset()
    run_once(function, *args)
    peak = process_status_mib("VmHWM")
    figures.update(
        second_call_rss_before_mib=before,
        second_call_peak_rss_mib=peak if reset else None,
        second_call_increase_mib=peak - before if reset else None,
        second_call_gpu_peak_mib=(
            tf.config.experimental.get_memory_info(gpu)["peak"] / 2**20 if gpu else None
        ),
    )
    return figures


def child_failure(command, result):
    """`"unavailable: ..."` for a child process that failed: its last stderr line."""
    lines = [line for line in (result.stderr or "").strip().splitlines() if line.strip()]
    last = lines[-1][:300] if lines else "no output"
    return f"unavailable: {Path(command[1]).name} exited with {result.returncode}: {last}"


def run_in_child(script, spec):
    """Runs `python SCRIPT --child SPEC_JSON --child-out FILE`; returns FILE's JSON.

    The child measures its own peak RSS (`first_call_memory`): `ru_maxrss`
    from `wait4`/`getrusage` would not do, since on Linux a child inherits
    its parent's high-water mark across fork and exec. A child that fails
    gives `{"unavailable": reason}`.
    """
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "child.json"
        command = [sys.executable, str(script), "--child", json.dumps(spec), "--child-out", str(out)]
        result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if result.returncode != 0:
            return {"unavailable": child_failure(command, result)}
        return json.loads(out.read_text())


def run_json_child(script, arguments, timeout=900):
    """Runs `python SCRIPT ARGUMENTS...` in a fresh process; its last stdout line as JSON.

    A child that fails or times out gives `{"unavailable": reason}`.
    """
    command = [sys.executable, str(script), *arguments]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"unavailable": f"unavailable: {Path(script).name} ran over {timeout} s"}
    if result.returncode != 0:
        return {"unavailable": child_failure(command, result)}
    return json.loads(result.stdout.strip().splitlines()[-1])


# === Report ===


def cpu_flags():
    """The CPU's feature flags (`/proc/cpuinfo`), an empty set where unreadable."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def bfloat16_hardware():
    """Where bfloat16 has native arithmetic here: `{"cpu_flags", "gpus", "available"}`.

    `cpu_flags` lists the CPU's AVX512-BF16 / AMX-BF16 flags found (none on
    a CPU without them), `gpus` the visible GPUs.
    """
    import tensorflow as tf

    found = sorted(cpu_flags() & set(BFLOAT16_CPU_FLAGS))
    gpus = [gpu.name for gpu in tf.config.list_physical_devices("GPU")]
    return {"cpu_flags": found, "gpus": gpus, "available": bool(found or gpus)}


def machine():
    """The CPU, core count, accelerators and library versions of this run."""
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
        "gpus": [gpu.name for gpu in tf.config.list_physical_devices("GPU")],
        "bfloat16_cpu_flags": sorted(cpu_flags() & set(BFLOAT16_CPU_FLAGS)),
        "avx_flags": sorted(f for f in cpu_flags() if f.startswith(("avx", "amx"))),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or "default",
    }


def write_json(path, results):
    """Writes `results` (indented JSON) to `path`, making its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
