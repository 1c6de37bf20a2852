"""Rerun a finished stage output with its exact resolved config, and compare the metrics.

    python -m fromscratch.reproduce outputs/03_pretrain [--key value ...]     (or: make reproduce RUN=...)

Reads <run>/run_info.json (which stage) and <run>/config.yaml (every resolved key), runs the same recipe into
<run>-reproduced (never over the original), then prints each metric of both runs side by side. The stack
versions that produced the original are in <run>/requirements-frozen.txt; a difference is printed first.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .config import UserError, cli
from .runinfo import stack_versions

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@cli
def main() -> int:
    argv = sys.argv[1:]
    if not argv:
        raise UserError("usage: python -m fromscratch.reproduce <finished run dir> [--key value ...]")
    run, extra = Path(argv[0]), argv[1:]
    info_path, config_path = run / "run_info.json", run / "config.yaml"
    if not info_path.is_file() or not config_path.is_file():
        raise UserError(f"{run} is not a finished stage output (no run_info.json / config.yaml)")
    info = json.loads(info_path.read_text())
    script = RECIPES / info["stage"] / "run.py"
    if not script.is_file():
        raise UserError(f"{run}: stage '{info['stage']}' has no recipe at {script}")
    for name, version in info.get("versions", {}).items():
        now = stack_versions().get(name)
        if now != version:
            print(f"[reproduce] note: {name} was {version}, is {now} here")
    out = Path(str(run).rstrip("/") + "-reproduced")
    cmd = [sys.executable, str(script), "--config", str(config_path), "--output_dir", str(out), "--overwrite", "true",
           *extra]
    print("[reproduce] " + " ".join(cmd), flush=True)
    code = subprocess.call(cmd)
    if code != 0:
        return code
    again = json.loads((out / "run_info.json").read_text())["metrics"]
    print(f"{'metric':<24}{'original':>16}{'reproduced':>16}")
    for key, value in info["metrics"].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            print(f"{key:<24}{value:>16.6g}{again.get(key, float('nan')):>16.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
