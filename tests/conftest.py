"""Shared test fixtures: offline environment, a recipe runner, and a tiny tokenizer + pretrained model made once
per session (every later stage's tests start from them, as the stages do)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# Never touch the network: the Hub is unreachable here and tests must not try.
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "WANDB_MODE": "offline", "HF_HUB_DISABLE_TELEMETRY": "1"}
os.environ.update(OFFLINE)


def recipe_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update(OFFLINE)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def free_port() -> int:
    """A TCP port no one listens on now (for a rendezvous)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_recipe(recipe: str, *args: str, ok: bool = True, env: dict | None = None, timeout: int = 600,
               launcher: list[str] | None = None, script: str = "run.py") -> subprocess.CompletedProcess:
    """Run recipes/<recipe>/<script> as a user would; assert its exit status; return the completed process."""
    cmd = [*(launcher or [sys.executable]), str(ROOT / "recipes" / recipe / script), *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=recipe_env(env), capture_output=True, text=True, timeout=timeout)
    if ok and proc.returncode != 0:
        raise AssertionError(f"{recipe} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    if not ok and proc.returncode == 0:
        raise AssertionError(f"{recipe} should have failed:\n{proc.stdout[-2000:]}")
    return proc


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one `error: ...` line a recipe prints for a user mistake (and check that there is no traceback)."""
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    """A 1k-vocabulary tokenizer trained by the recipe on the embedded Shakespeare (a few seconds)."""
    out = tmp_path_factory.mktemp("stages") / "02_tokenizer"
    run_recipe("02_tokenizer", "--config", "recipes/02_tokenizer/config_tiny.yaml", "--sources",
               "default:tinyshakespeare", "--vocab_size", "1024", "--output_dir", str(out))
    return out


@pytest.fixture(scope="session")
def pretrained_dir(tokenizer_dir, tmp_path_factory) -> Path:
    """A nano Llama pretrained by the recipe for 40 steps (about 15 s on 2 cores)."""
    out = tmp_path_factory.mktemp("stages") / "03_pretrain"
    run_recipe("03_pretrain", "--config", "recipes/03_pretrain/config_tiny.yaml", "--preset", "nano",
               "--sources", "default:tinyshakespeare", "--tokenizer_dir", str(tokenizer_dir),
               "--block_size", "128", "--max_steps", "40", "--eval_steps", "20", "--save_steps", "20",
               "--learning_rate", "0.01", "--report_to", "tensorboard", "--disable_tqdm", "true", "--output_dir", str(out),
               "--eval_tokens", "2048", "--final_eval_tokens", "8192")  # 16 windows per evaluation, 64 at the end
    return out


# --- post-training stages (issue 5): each starts from the previous stage's fixture, as the stages do ---------
TINY_RUN = ("--report_to", "none", "--disable_tqdm", "true")


@pytest.fixture(scope="session")
def sft_dir(pretrained_dir, tmp_path_factory) -> Path:
    """The nano model instruction-tuned by recipes/04_sft for 30 steps on the embedded conversations."""
    out = tmp_path_factory.mktemp("stages") / "04_sft"
    run_recipe("04_sft", "--config", "recipes/04_sft/config_tiny.yaml", "--model_dir", str(pretrained_dir),
               "--output_dir", str(out), "--max_length", "128", "--max_steps", "30", "--eval_steps", "15",
               "--save_steps", "15", "--learning_rate", "0.003", "--eval_samples", "8", *TINY_RUN)
    return out


@pytest.fixture(scope="session")
def reward_dir(sft_dir, tmp_path_factory) -> Path:
    """A reward model trained by recipes/05_reward from the SFT fixture on the embedded hh-rlhf pairs."""
    out = tmp_path_factory.mktemp("stages") / "05_reward"
    run_recipe("05_reward", "--config", "recipes/05_reward/config_tiny.yaml", "--model_dir", str(sft_dir),
               "--output_dir", str(out), "--max_length", "128", "--validation_fraction", "0.3",
               "--max_steps", "200", "--learning_rate", "0.002", "--eval_steps", "100", "--save_steps", "100",
               "--eval_samples", "64", *TINY_RUN)  # 64 fixed pairs during training, all of them at the end
    return out


def tokenize_here(specs, out: Path, tokenizer_dir, tasks=2, fraction=0.1) -> dict:
    """Tokenize `specs` into token shards at `out`, running the recipe's tasks in this process (the executor
    path is tested by tests/recipes/test_tokenize_recipe.py)."""
    import json

    from fromscratch.pretraining.token_writer import TokenizeShards, list_units, merge

    units, memory, _ = list_units(specs, "text")
    step = TokenizeShards(units, memory, str(out), str(tokenizer_dir), "text", fraction)
    for rank in range(tasks):
        list(step.run(None, rank, tasks))
    merge(out, tasks, str(tokenizer_dir))
    return json.loads((out / "metadata.json").read_text())


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """The partition of a real Slurm cluster this machine submits to (CI starts a one-node one on localhost)."""
    import shutil

    if not shutil.which("sbatch"):
        pytest.skip("Slurm absent: apt-get install slurm-wlm && bash tests/slurm/start_local_cluster.sh")
    info = subprocess.run(["sinfo", "-h", "-o", "%P %T"], capture_output=True, text=True)
    # a node busy with another test's job is up: the job waits in the queue
    up = [line.split()[0].rstrip("*") for line in info.stdout.splitlines()
          if line.split()[1:] and line.split()[1].rstrip("*") in ("idle", "mixed", "allocated", "completing")]
    if info.returncode or not up:
        pytest.skip(f"no Slurm node up (sinfo: {(info.stdout + info.stderr).strip() or 'nothing'}): "
                    "bash tests/slurm/start_local_cluster.sh")
    return up[0]
