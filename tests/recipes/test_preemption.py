"""Preemption: a SIGTERM or SIGUSR1 mid-run makes every rank checkpoint at the same step and exit, publishing
nothing; the same command with `--resume auto` continues, and its per-step losses equal an uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from conftest import ROOT, recipe_env, run_recipe
from test_distributed import ACCELERATE, corpus, free_port  # noqa: F401 (corpus: the shared fixture)

pytestmark = pytest.mark.slow
STEPS = 40


def _args(corpus, tokenizer_dir, out):
    # save_steps far past the end: the only checkpoint is the one the signal asks for
    return ["--config", "recipes/03_pretrain/config_tiny.yaml", "--preset", "nano", "--sources", str(corpus),
            "--tokenizer_dir", str(tokenizer_dir), "--block_size", "64", "--per_device_train_batch_size", "4",
            "--max_steps", str(STEPS), "--logging_steps", "1", "--save_steps", "1000", "--eval_strategy", "no",
            "--learning_rate", "0.01", "--lr_scheduler_type", "cosine_with_min_lr", "--spike_guard", "false",
            "--report_to", "none", "--disable_tqdm", "true", "--output_dir", str(out)]


def _launcher(ranks):
    if ranks == 1:
        return [sys.executable]
    return [*ACCELERATE, "--config_file", str(ROOT / "accelerate_configs/cpu_ddp.yaml"), "--num_processes",
            str(ranks), "--main_process_port", str(free_port())]


def _losses(out):
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    return {r["step"]: r["loss"] for r in history if "loss" in r}


def _signal_after_steps(cmd, steps, sig, target, env=None, patience=300):
    """Run `cmd`, and once `steps` losses are logged send `sig` to one process (`target(proc)` picks it).

    A run that is still going `patience` seconds after the signal has ignored it: it is killed and the test fails
    with the log, rather than hanging."""
    env = {"PYTHONUNBUFFERED": "1", **(env or {})}  # each step's log line the moment it is printed
    proc = subprocess.Popen(cmd, cwd=ROOT, env=recipe_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    seen, lines, sent = 0, [], None
    deadline = time.time() + 600
    for line in proc.stdout:
        lines.append(line)
        seen += "'loss'" in line
        if seen == steps and sent is None:
            target(proc).send_signal(sig)
            sent = time.time()
        if time.time() > (sent + patience if sent else deadline):
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"no stop {patience} s after {sig.name}:\n" + "".join(lines[-40:]))
    proc.wait()
    return proc.returncode, "".join(lines)


def _rank_process(rank):
    """The worker process of `rank` under the launcher (its environment says which)."""
    def pick(proc):
        for _ in range(200):
            for child in psutil.Process(proc.pid).children(recursive=True):
                try:
                    if child.environ().get("RANK") == str(rank) and "run.py" in " ".join(child.cmdline()):
                        return child
                except psutil.Error:
                    continue
            time.sleep(0.05)
        raise AssertionError(f"no rank {rank} process")
    return pick


@pytest.mark.parametrize("ranks, sig", [(1, signal.SIGUSR1), (2, signal.SIGTERM)])
def test_signal_checkpoints_at_one_step_and_resume_auto_matches_uninterrupted(ranks, sig, corpus, tokenizer_dir,
                                                                              tmp_path):
    ref = tmp_path / "ref"
    run_recipe("03_pretrain", *_args(corpus, tokenizer_dir, ref), launcher=_launcher(ranks))

    out = tmp_path / "preempted"
    cmd = [*_launcher(ranks), str(ROOT / "recipes/03_pretrain/run.py"), *_args(corpus, tokenizer_dir, out)]
    # 2 ranks: only rank 1 gets the signal; rank 0 must stop at the same step through the all-reduce
    target = (lambda p: p) if ranks == 1 else _rank_process(1)
    code, log = _signal_after_steps(cmd, 8, sig, target)
    assert code != 0, log[-3000:]
    stopped = [line for line in log.splitlines() if line.startswith("[preempted]")]
    assert stopped and f"{sig.name}: checkpoint at step" in stopped[0], log[-3000:]
    step = int(stopped[0].split("checkpoint at step ")[1].split()[0])
    assert 8 <= step < STEPS
    work = out.with_name("preempted.tmp")
    assert sorted(p.name for p in work.glob("checkpoint-*")) == [f"checkpoint-{step}"]
    if ranks == 2:  # each rank saved its own RNG state at that step: both took part in the same checkpoint
        assert {p.name for p in (work / f"checkpoint-{step}").glob("rng_state*")} == {"rng_state_0.pth",
                                                                                     "rng_state_1.pth"}
    assert not out.exists()  # nothing published

    resumed = run_recipe("03_pretrain", *_args(corpus, tokenizer_dir, out), "--resume", "auto",
                         launcher=_launcher(ranks))
    assert f"checkpoint-{step}" in resumed.stdout
    got, want = _losses(out), _losses(ref)
    assert sorted(got) == list(range(1, STEPS + 1))
    for s in range(1, STEPS + 1):
        assert got[s] == pytest.approx(want[s], rel=1e-4, abs=1e-4), (s, got[s], want[s])


def test_resume_auto_starts_fresh_without_an_unfinished_run(corpus, tokenizer_dir, tmp_path):
    out = tmp_path / "fresh"
    args = _args(corpus, tokenizer_dir, out)
    args[args.index("--max_steps") + 1] = "2"
    proc = run_recipe("03_pretrain", *args, "--resume", "auto")
    assert "no checkpoint yet: starting over" in proc.stdout
    assert json.loads((out / "run_info.json").read_text())["metrics"]["steps"] == 2


def test_sigterm_to_the_launcher_reaches_every_rank_as_launch_slurm_sends_it(corpus, tokenizer_dir, tmp_path):
    """launch.slurm turns Slurm's USR1 into TERM for the launcher, which forwards it to every rank."""
    out = tmp_path / "term"
    args = _args(corpus, tokenizer_dir, out)
    # a run far longer than any machine finishes: only the forwarded signal can end it (else the patience fails it)
    args[args.index("--max_steps") + 1] = "1000000"
    args[args.index("--save_steps") + 1] = "10000000"
    cmd = [*_launcher(2), str(ROOT / "recipes/03_pretrain/run.py"), *args]
    code, log = _signal_after_steps(cmd, 4, signal.SIGTERM, lambda p: p)
    assert code != 0 and "[preempted] SIGTERM: checkpoint at step" in log, log[-3000:]
    (ckpt,) = out.with_name("term.tmp").glob("checkpoint-*")
    assert {p.name for p in ckpt.glob("rng_state*")} == {"rng_state_0.pth", "rng_state_1.pth"}
