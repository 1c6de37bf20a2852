"""Shared helpers for the benchmarks: medians, peak memory, a measured matmul peak, a result line."""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time


def median(xs):
    return statistics.median(xs)


def flops_per_token(parameters: int, layers: int, hidden: int, context: int) -> float:
    """Training FLOPs per token: 6 N for the weights (forward + backward) plus 12 L H T for attention scores."""
    return 6 * parameters + 12 * layers * hidden * context


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def matmul_peak_flops(n: int = 1024, reps: int = 20, dtype=None) -> float:
    """Best achieved FLOP/s of a square fp32 matmul on this machine: the denominator of our MFU on CPU."""
    import torch

    dtype = dtype or torch.float32
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


def emit(rows: list[dict]) -> None:
    """One JSON line per figure on stdout, read by run_all.py: name, value, unit, baseline, baseline value."""
    for row in rows:
        row.setdefault("peak_rss_mb", round(peak_rss_mb(), 1))
        print("BENCH " + json.dumps(row), flush=True)
    sys.stdout.flush()
