"""What every benchmark writes beside its figures: the machine it ran on, and the file.

A figure read months later means little without the machine, its load and the
day it was measured, so each benchmark's JSON report carries `machine()`; and
each writes its report the same way (`write_report`), so the files in
bench/results/ can be read and compared alike.
"""
from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

THREADS_SUFFIX = "_NUM_THREADS"  # OMP_, MKL_, OPENBLAS_...: how wide numeric code may run


def machine(versions: tuple[str, ...] = ()) -> dict:
    """The platform, Python, CPUs, load average and time of this run. With
    `versions` (package names), their installed versions too, and the
    *_NUM_THREADS variables set: a numeric library's speed hangs on both."""
    found = {"platform": platform.platform(), "python": platform.python_version(),
             "cpus": os.cpu_count(), "load_average": os.getloadavg()}
    if versions:
        found["versions"] = {name: version(name) for name in versions}
        found["threads_env"] = {k: v for k, v in os.environ.items()
                                if k.endswith(THREADS_SUFFIX)}
    found["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    return found


def write_report(path: Path, report: dict) -> None:
    """The report as indented JSON at `path` (its folders made); numpy numbers and
    other number-like values are written as floats."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=float) + "\n")
