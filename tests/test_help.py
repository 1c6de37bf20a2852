"""`--help` of every recipe: short, lists --config, and each of the recipe's own keys with its help text and
default; the library's hundreds of TrainingArguments keys are one line that points to `--help-all`."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
from transformers import TrainingArguments

from conftest import ROOT, recipe_env
from fromscratch.config import short_help

# Every entry script a user runs: each stage's run.py and the stages' other scripts (06's one per algorithm family,
# 03's tokenize step).
SCRIPTS = sorted(f"{p.parent.name}/{p.name}" for p in (ROOT / "recipes").glob("*/*.py")
                 if p.name == "run.py" or p.name in ("online.py", "dpo.py", "tokenize_corpus.py"))
FLAG = re.compile(r"^  --(\w+) (\S+)  (.*) \(default: (.*)\)$")


def _help(recipe: str, flag: str = "--help") -> str:
    script = recipe if recipe.endswith(".py") else f"{recipe}/run.py"
    proc = subprocess.run([sys.executable, str(ROOT / "recipes" / script), flag], cwd=ROOT,
                          env=recipe_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_pretrain_help_is_short_and_describes_our_flags():
    text = _help("03_pretrain")
    lines = text.splitlines()
    assert len(lines) < 80, len(lines)
    assert any(line.startswith("  --config FILE  ") for line in lines)
    flags = {m.group(1): m for m in map(FLAG.match, lines) if m}
    assert {"preset", "sources", "spike_guard", "precision", "resume", "block_size"} <= set(flags)
    assert flags["preset"].group(4) == "tiny" and "preset" in flags["preset"].group(3)
    assert all(m.group(3).strip() for m in flags.values())  # every flag of ours says what it does
    assert "learning_rate" not in flags and "--help-all" in text  # the library's keys: one line, not 100
    assert "--learning_rate" in _help("03_pretrain", "--help-all")


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_every_recipe_help_lists_config_and_helps_every_flag(script):
    lines = _help(script).splitlines()
    assert any(line.startswith("  --config FILE  ") for line in lines)
    flags = [line for line in lines if line.startswith("  --") and not line.startswith("  --config ")]
    assert flags and all(FLAG.match(line) and FLAG.match(line).group(3).strip() for line in flags), flags
    assert len(lines) < 100  # 01_data's 67 keys are all its own; the library's keys are one line everywhere


def test_short_help_keeps_library_keys_to_one_line():
    @dataclass
    class Ours:
        alpha: int = field(default=3, metadata={"help": "how much"})

    @dataclass
    class Mixed(TrainingArguments):
        output_dir: str = field(default="out", metadata={"help": "where"})

    text = short_help((Ours, Mixed), prog="run.py")
    assert "  --alpha int  how much (default: 3)" in text
    assert "  --output_dir str  where (default: out)" in text  # redeclared by us: ours
    assert "--learning_rate" not in text and "keys of transformers.TrainingArguments" in text
