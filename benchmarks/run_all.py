"""`make bench`: run every benchmarks/bench_*.py in its own process (so each has its own peak memory) and print
one table: each figure beside its same-run baseline, with the ratio.

    python benchmarks/run_all.py [name ...]     e.g. `python benchmarks/run_all.py pretrain`
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if any(a in s.stem for a in argv)]
    rows, failed, tables, notes = [], [], [], []
    for script in scripts:
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(HERE.parent / "src")})
        took = time.perf_counter() - t
        got = [json.loads(line[6:]) for line in proc.stdout.splitlines() if line.startswith("BENCH ")]
        if proc.returncode == 0 and not got:  # a benchmark that prints its own table (bench_data.py)
            tables.append(f"\n== {script.name} ({took:.0f} s)\n{proc.stdout.strip()}")
        elif proc.returncode != 0:
            failed.append(f"{script.name}: exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
        for row in got:
            row["script"], row["seconds"] = script.stem, took
        rows += got
        # What a benchmark says beside its figures (what `torch_compile: auto` decides on this machine, the runs)
        notes += [line for line in proc.stderr.splitlines() if line.startswith("# ")]
    header = f"{'figure':<46}{'value':>12}  {'unit':<18}{'baseline (same run)':<40}{'baseline':>12}{'ratio':>8}{'peak RSS MB':>13}"
    print(header)
    print("-" * len(header))
    for r in rows:
        base = r.get("baseline_value")
        ratio = f"{r['value'] / base:.2f}x" if base else ""
        base_s = f"{base:.4g}" if base is not None else ""
        print(f"{r['name']:<46}{r['value']:>12.4g}  {r['unit']:<18}{r['baseline'][:39]:<40}{base_s:>12}{ratio:>8}"
              f"{r['peak_rss_mb']:>13.0f}")
    for n in notes:
        print(n)
    for t in tables:
        print(t)
    for f in failed:
        print("FAILED " + f)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
