"""--resume after a crash continues from the checkpoint: step count, optimizer, scheduler, RNG and data order
carried, so the resumed run's losses equal an uninterrupted run's."""

import json
import os
import signal
import subprocess
import sys
import time

from conftest import ROOT, recipe_env, run_recipe


def _args(tokenizer_dir, out):
    return ["--config", "recipes/03_pretrain/config_tiny.yaml", "--preset", "nano", "--sources",
            "default:tinyshakespeare", "--tokenizer_dir", str(tokenizer_dir), "--block_size", "64",
            "--per_device_train_batch_size", "8", "--max_steps", "24", "--logging_steps", "1", "--save_steps", "8",
            "--eval_strategy", "no", "--learning_rate", "0.01", "--report_to", "none", "--disable_tqdm", "true",
            "--output_dir", str(out)]


def _losses(out):
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    return {r["step"]: r["loss"] for r in history if "loss" in r}


def _start_and_kill_when(args, path, resume):
    """Start the recipe, SIGKILL it the moment `path` exists (or let it end), and return whether it was killed."""
    cmd = [sys.executable, str(ROOT / "recipes/03_pretrain/run.py"), *args] + (["--resume", "true"] if resume else [])
    proc = subprocess.Popen(cmd, cwd=ROOT, env=recipe_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not path.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return killed


def test_resume_after_sigkills_matches_uninterrupted_run(tokenizer_dir, tmp_path):
    ref = tmp_path / "ref"
    run_recipe("03_pretrain", *_args(tokenizer_dir, ref))

    out = tmp_path / "crashed"
    work = out.with_name("crashed.tmp")
    # Kill 1: as soon as the step-8 checkpoint folder appears, i.e. most likely in the middle of writing it.
    assert _start_and_kill_when(_args(tokenizer_dir, out), work / "checkpoint-8", resume=False)
    # Kill 2: right after the step-16 checkpoint is complete.
    assert _start_and_kill_when(_args(tokenizer_dir, out), work / "checkpoint-16" / "trainer_state.json", resume=True)
    assert not out.exists()  # killed mid-run: nothing published

    resumed = run_recipe("03_pretrain", *_args(tokenizer_dir, out), "--resume", "true")
    assert "[resume] from" in resumed.stdout and "checkpoint-16" in resumed.stdout
    ref_losses, got = _losses(ref), _losses(out)
    assert sorted(got) == list(range(1, 25))
    for step in range(1, 25):  # same seed, same data order, restored optimizer and RNG: identical on CPU
        assert abs(got[step] - ref_losses[step]) < 1e-4, (step, got[step], ref_losses[step])
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 24
