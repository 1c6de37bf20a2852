"""recipes/01_data on datatrove executors: the output does not depend on the task count or the executor, and a run
killed with SIGKILL continues with --resume, redoing only the tasks that had not finished."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, recipe_env, run_recipe
from fromscratch.sources import load_documents

CONFIG = "recipes/01_data/config_tiny.yaml"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Six JSONL files of speech paragraphs, with exact and near copies planted across files."""
    d = tmp_path_factory.mktemp("corpus")
    speeches, _ = load_documents("default:us_speeches")
    paras = [p for s in speeches for p in s.split("\n\n") if len(p.split()) >= 60][:240]
    files = [paras[i::6] for i in range(6)]
    for k in range(12):  # copies land in other files (other tasks) than their originals
        w = paras[k].split()
        w[len(w) // 2] = "republic"
        files[(k + 3) % 6].append(" ".join(w))  # near
        files[(k + 2) % 6].append(paras[k + 12].upper())  # exact after normalization
    for i, f in enumerate(files):
        (d / f"part{i}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in f))
    return d


def _args(corpus, out, *extra):
    return ["--config", CONFIG, "--sources", str(corpus), "--weights", "1", "--licenses", "public domain", "--min_words", "20",
            "--toxicity_threshold", "-1", "--validation_fraction", "0.05", "--batch_size", "16",
            "--output_dir", str(out), *extra]


def _result(out: Path):
    import pyarrow.parquet as pq

    stats = json.loads((out / "stats.json").read_text())
    counts = [(s["step"], s["in"], s["kept"], s["dropped"]) for s in stats["steps"]]
    split = {k: sorted(t for f in sorted((out / k).glob("*.parquet")) for t in pq.read_table(f)["text"].to_pylist())
             for k in ("train", "validation")}
    return counts, split


@pytest.fixture(scope="module")
def one_task(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "out"
    run_recipe("01_data", *_args(corpus, out, "--tasks", "1", "--workers", "1"))
    return _result(out)


@pytest.mark.slow
def test_planted_duplicates_removed_and_task_count_changes_nothing(corpus, one_task, tmp_path):
    counts, split = one_task
    steps = {c[0]: c for c in counts}
    assert steps["dedup"][3] == {"exact duplicate": 12, "near duplicate": 12}
    run_recipe("01_data", *_args(corpus, tmp_path / "out", "--tasks", "5", "--workers", "2"))
    assert _result(tmp_path / "out") == (counts, split)  # same counts, same documents in both splits


@pytest.mark.slow
def test_sigkill_then_resume_redoes_only_unfinished_tasks(corpus, one_task, tmp_path):
    out = tmp_path / "out"
    args = [sys.executable, str(ROOT / "recipes/01_data/run.py"),
            *_args(corpus, out, "--tasks", "6", "--workers", "1")]
    done = Path(str(out) + ".logs") / "process" / "completions"
    proc = subprocess.Popen(args, cwd=ROOT, env=recipe_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(done.glob("*"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-stage: some processing tasks finished, others not
    proc.wait()
    finished = {f.name: f.stat().st_mtime_ns for f in done.glob("*")}
    assert 2 <= len(finished) < 6 and not out.exists()
    run_recipe("01_data", *(a for a in args[2:]), "--resume", "true")
    assert {f.name: f.stat().st_mtime_ns for f in done.glob("*") if f.name in finished} == finished  # not redone
    assert len(list(done.glob("*"))) == 6
    counts, split = _result(out)
    assert counts == one_task[0] and split == one_task[1]


@pytest.mark.slow
def test_a_local_ray_cluster_keeps_the_same_documents(corpus, one_task, tmp_path):
    pytest.importorskip("ray")
    run_recipe("01_data", *_args(corpus, tmp_path / "out", "--executor", "ray", "--tasks", "3", "--workers", "2"))
    assert _result(tmp_path / "out") == one_task
