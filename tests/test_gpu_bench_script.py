"""benchmarks/gpu_pretrain.py, the prepared GPU check, runs its whole path on CPU: it trains a tokenizer, runs the
pretraining recipe per preset and reads the figures back (on a GPU it adds MFU and peak memory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT
from fromscratch import planning
from fromscratch.modeling import PRESETS


def test_gpu_script_runs_the_recipe_and_reports_its_figures(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_pretrain.py"), "--gpu", "cpu", "--presets", "nano",
                           "--steps", "6", "--vocab", "1024", "--block_size", "64", "--batch", "4"],
                          cwd=ROOT, env={**os.environ, "OUT": str(tmp_path)}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = json.loads((tmp_path / "gpu_pretrain.json").read_text())
    assert row["preset"] == "nano" and row["steps"] == 6 and row["block_size"] == 64
    assert row["parameters"] == planning.parameters(PRESETS["nano"], 1024)  # the nano shape at this vocabulary
    assert row["tokens_per_second"] > 0 and row["mfu"] is None  # no GPU peak to divide by on CPU
    assert "tokens/s" in proc.stdout
