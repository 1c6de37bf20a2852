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


def test_resume_after_sigkill_matches_uninterrupted_run(tokenizer_dir, tmp_path):
    ref = tmp_path / "ref"
    run_recipe("03_pretrain", *_args(tokenizer_dir, ref))

    out = tmp_path / "crashed"
    proc = subprocess.Popen([sys.executable, str(ROOT / "recipes/03_pretrain/run.py"), *_args(tokenizer_dir, out)],
                            cwd=ROOT, env=recipe_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = out.with_name("crashed.tmp") / "checkpoint-8" / "trainer_state.json"
    deadline = time.time() + 300
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt.exists() and not out.exists()  # killed mid-run: nothing published

    resumed = run_recipe("03_pretrain", *_args(tokenizer_dir, out), "--resume", "true")
    assert "[resume] from" in resumed.stdout and "checkpoint-" in resumed.stdout
    ref_losses, got = _losses(ref), _losses(out)
    assert sorted(got) == list(range(1, 25))
    for step in range(1, 25):  # same seed, same data order, restored optimizer: identical on CPU
        assert abs(got[step] - ref_losses[step]) < 1e-4, (step, got[step], ref_losses[step])
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 24
