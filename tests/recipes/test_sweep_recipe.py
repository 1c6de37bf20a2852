"""The sweep recipe end to end: a bad space fails with one line; a killed sweep resumes without redoing finished
trials; the table, plot and best YAML are written, and stage 03 runs the best YAML."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing, suppress

import optuna
import yaml
from conftest import ROOT, error_line, recipe_env, run_recipe
from test_commented_yaml import key_comments

from fromscratch import commented_yaml

SPACE = {"learning_rate": {"low": 1e-3, "high": 3e-2, "log": True}, "per_device_train_batch_size": {"choices": [4, 8]}}


def sweep_yaml(tmp_path, tokenizer_dir, **over):
    cfg = {"base_config": "recipes/03_pretrain/config_tiny.yaml",
           "fixed": {"tokenizer_dir": str(tokenizer_dir), "preset": "nano", "sources": ["default:tinyshakespeare"],
                     "block_size": 32, "validation_fraction": 0.01, "max_steps": 4, "eval_strategy": "steps",
                     "eval_steps": 2, "logging_steps": 2, "per_device_eval_batch_size": 64},
           "space": SPACE, "n_trials": 3, "study_name": "t", "pruner_startup_trials": 1,
           "output_dir": str(tmp_path / "sweep"), **over}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_malformed_space_fails_before_any_work(tmp_path, tokenizer_dir):
    bad = sweep_yaml(tmp_path, tokenizer_dir, space={"learning_rate": {"low": 0.1, "high": 0.01}})
    line = error_line(run_recipe("08_sweep", "--config", str(bad), ok=False))
    assert "space.learning_rate" in line and "low" in line
    assert not (tmp_path / "sweep.tmp").exists() and not (tmp_path / "sweep").exists()


def _finished_trials(db) -> int:
    """Finished trials in the sweep's sqlite, read-only: the sweep may be creating the schema (optuna.load_study
    would create it too, racing the sweep's own create_study, as a CI run once showed)."""
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)) as con:
            return con.execute("SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')").fetchone()[0]
    except sqlite3.Error:  # not there yet, no tables yet, or locked by a write
        return 0


def test_killed_sweep_resumes_without_redoing_finished_trials(tmp_path, tokenizer_dir):
    config = sweep_yaml(tmp_path, tokenizer_dir)
    db = tmp_path / "sweep.tmp" / "study.db"
    cmd = [sys.executable, str(ROOT / "recipes/08_sweep/run.py"), "--config", str(config)]
    log = tmp_path / "killed.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=recipe_env(), stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:  # kill it as soon as one trial is finished (the next one is then running)
        deadline = time.time() + 400
        while time.time() < deadline and proc.poll() is None and not _finished_trials(db):
            time.sleep(0.2)
        assert proc.poll() is None, f"the sweep ended before it was killed:\n{log.read_text()[-3000:]}"
        assert _finished_trials(db), "no trial finished before the deadline"
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    first = [t for t in optuna.load_study(study_name="t-nano", storage=f"sqlite:///{db}").trials
             if t.state.is_finished()][0]

    run = run_recipe("08_sweep", "--config", str(config), "--resume", "true")
    assert "[sweep] t-nano: 1 trials done, 2 to run" in run.stdout or "2 trials done, 1 to run" in run.stdout
    out = tmp_path / "sweep"
    study = optuna.load_study(study_name="t-nano", storage=f"sqlite:///{out / 'study.db'}")
    kept = study.trials[first.number]
    assert (kept.datetime_start, kept.value, kept.params) == (first.datetime_start, first.value, first.params)
    counted = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(counted) == 3  # not 4: the finished trial was not run again
    rows = json.loads((out / "trials.json").read_text())
    assert len(rows) == len(study.trials) and (out / "trials.csv").is_file() and (out / "sweep.png").is_file()
    from card_rules import problems

    assert problems(out) == []  # the sweep's card has Hub metadata (licence, language), and no library_name

    # The best point is a ready stage 03 config with every key of the base config, each commented.
    best = out / "best_nano.yaml"
    base_keys = set(yaml.safe_load((ROOT / "recipes/03_pretrain/config_tiny.yaml").read_text()))
    assert base_keys <= set(yaml.safe_load(best.read_text()))
    assert all("#" in line for line in best.read_text().splitlines() if line.strip())
    # each key's comment is stage 03's own, the keys the sweep set included (max_steps, preset, learning_rate...)
    assert key_comments(best.read_text()) == commented_yaml.comments(ROOT / "recipes/03_pretrain/config_tiny.yaml")
    run_recipe("03_pretrain", "--config", str(best), "--max_steps", "2", "--eval_strategy", "no",
               "--save_strategy", "no", "--report_to", "none", "--output_dir", str(tmp_path / "from_best"))
    assert (tmp_path / "from_best" / "model.safetensors").is_file()
