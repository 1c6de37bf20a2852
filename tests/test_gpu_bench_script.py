"""benchmarks/gpu_pretrain.py, the prepared GPU check, runs its whole path on CPU: it trains a tokenizer, runs the
pretraining recipe per preset and reads the figures back (on a GPU it adds MFU and peak memory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from fromscratch import planning
from fromscratch.modeling import PRESETS


def _script(tmp_path, *variants):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_pretrain.py"), "--gpu", "cpu", "--presets", "nano",
                           "--steps", "6", "--vocab", "1024", "--block_size", "64", "--batch", "4",
                           "--variants", *variants],
                          cwd=ROOT, env={**os.environ, "OUT": str(tmp_path)}, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads((tmp_path / "gpu_pretrain.json").read_text())


def test_gpu_script_runs_the_recipe_and_reports_its_figures(tmp_path):
    proc, (row,) = _script(tmp_path, "eager")
    assert row["preset"] == "nano" and row["variant"] == "eager" and row["steps"] == 6 and row["block_size"] == 64
    assert row["compile_seconds"] is None and row["processes"] == 1
    assert row["parameters"] == planning.parameters(PRESETS["nano"], 1024)  # the nano shape at this vocabulary
    assert row["tokens_per_second"] > 0 and row["mfu"] is None  # no GPU peak to divide by on CPU
    assert "tokens/s" in proc.stdout


@pytest.mark.slow
def test_gpu_script_compile_ddp_and_fsdp_rows(tmp_path):
    """The other rows of `make bench-gpu`: a compiled run reports its compile time; DDP and FSDP run 2 ranks."""
    _, rows = _script(tmp_path, "compile", "ddp", "fsdp")
    by = {r["variant"]: r for r in rows}
    assert set(by) == {"compile", "ddp", "fsdp"} and all(r["steps"] == 6 and r["tokens_per_second"] > 0 for r in rows)
    assert by["compile"]["compile_seconds"] is not None and by["compile"]["processes"] == 1
    assert by["ddp"]["processes"] == by["fsdp"]["processes"] == 2
