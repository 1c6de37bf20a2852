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


SBATCH = """#!/bin/bash
# stand-in for sbatch: keep the script and the arguments, answer as Slurm does
n=$(( $(cat "$CALLS/count" 2>/dev/null || echo 0) + 1 )); echo $n > "$CALLS/count"
cp "${@: -1}" "$CALLS/$n.sh"; printf '%s\\n' "${@:1:$#-1}" > "$CALLS/$n.args"
echo "Submitted batch job $n"
"""
# Each array element as Slurm runs it: SLURM_ARRAY_TASK_ID set, the stage's pickled executor loaded and run (srun
# itself is not exercised), stage after stage in the order the dependencies allow.
RUN_ARRAYS = """
import os, sys, dill
for pik, size in zip(sys.argv[1::2], sys.argv[2::2]):
    for i in range(int(size)):
        os.environ.update(SLURM_ARRAY_TASK_ID=str(i), RUN_OFFSET="0", SLURM_NODELIST="node-a")
        with open(pik, "rb") as f:
            dill.load(f).run()
"""


@pytest.mark.slow
def test_slurm_submits_chained_arrays_with_our_settings_and_they_give_the_local_output(corpus, one_task, tmp_path):
    bin_dir, calls, out = tmp_path / "bin", tmp_path / "calls", tmp_path / "out"
    bin_dir.mkdir()
    calls.mkdir()
    for name, body in (("sbatch", SBATCH), ("scontrol", '#!/bin/bash\necho node-a\n')):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls)}
    proc = run_recipe("01_data", *_args(corpus, out, "--tasks", "3", "--executor", "slurm", "--slurm_partition", "cpuq",
                                        "--slurm_time", "01:30:00", "--slurm_cpus_per_task", "2",
                                        "--slurm_mem_per_cpu_gb", "3", "--slurm_qos", "high"), env=env)
    assert "[slurm] submitted" in proc.stdout and not out.exists()  # the launcher only submits
    jobs = []
    for n in range(1, int((calls / "count").read_text()) + 1):
        script, args = (calls / f"{n}.sh").read_text(), (calls / f"{n}.args").read_text().split()
        if "launch_pickled_pipeline" in script:  # a stage's job array (the others merge its datatrove stats)
            jobs.append((n, script, args))
    names = [s.split("--job-name=")[1].split()[0] for _, s, _ in jobs]
    assert names == [f"fromscratch-{s}" for s in ("process", "buckets", "clusters", "decontaminate", "hold_out",
                                                  "augment", "mix", "publish")]
    for k, (n, script, args) in enumerate(jobs):
        for line in ("--partition=cpuq", "--time=01:30:00", "--cpus-per-task=2", "--mem-per-cpu=3G", "--qos=high",
                     "--signal=USR1@120"):
            assert f"#SBATCH {line}\n" in script, (names[k], line)
        assert "#SBATCH --requeue\n" in script
        if k:  # each stage starts once the previous stage's array has succeeded
            assert f"--dependency=afterok:{jobs[k - 1][0]}" in args
    sizes = [int(s.split("--array=0-")[1].split()[0]) + 1 for _, s, _ in jobs]
    assert sizes[0] == 3 and sizes[2] == 1 and sizes[-1] == 1
    piks = [s.split("launch_pickled_pipeline ")[1].split()[0] for _, s, _ in jobs]
    assert all(Path(p).exists() for p in piks)
    run = subprocess.run([sys.executable, "-c", RUN_ARRAYS, *(x for p, n in zip(piks, sizes) for x in (p, str(n)))],
                         cwd=ROOT, env=recipe_env(env), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert _result(out) == one_task


def test_a_folder_of_a_few_small_text_files_where_a_task_keeps_nothing(tmp_path):
    # five files, five tasks; the first file is all boilerplate, so its task's mix shard is empty (issue 28:
    # that crashed in pyarrow's take() with "no kernel matching input types (string, null)")
    src = tmp_path / "src"
    src.mkdir()
    (src / "f0.txt").write_text("ok\n")
    play = (Path(__file__).resolve().parents[2] / "src/fromscratch/embedded/tinyshakespeare/input.txt").read_text()
    for i in range(1, 5):
        (src / f"f{i}.txt").write_text(play[i * 4000:(i + 1) * 4000])
    out = tmp_path / "out"
    run_recipe("01_data", "--config", "recipes/01_data/config_tiny.yaml", "--sources", str(src), "--weights", "1",
               "--text_unit", "paragraph", "--output_dir", str(out))
    import datasets

    train = datasets.load_dataset("parquet", data_files=str(out / "train" / "*.parquet"), split="train")
    assert len(train) > 20 and len(list((out / "train").glob("*.parquet"))) < 5  # no empty shard published
    stats = json.loads((out / "stats.json").read_text())
    assert stats["steps"][0]["step"] == "load"


@pytest.mark.slow
def test_a_real_slurm_cluster_runs_the_chained_arrays_to_the_local_output(corpus, one_task, slurm_cluster, tmp_path):
    """The same stage through a real sbatch/slurmctld/slurmd (tests/slurm/start_local_cluster.sh): the launcher
    submits and returns, the arrays run in dependency order, the last one publishes the output."""
    out = tmp_path / "out"
    proc = run_recipe("01_data", *_args(corpus, out, "--tasks", "2", "--executor", "slurm", "--slurm_partition",
                                        slurm_cluster, "--slurm_mem_per_cpu_gb", "1", "--slurm_time", "00:20:00"))
    assert "[slurm] submitted" in proc.stdout
    logs = Path(str(out) + ".logs")
    deadline = time.time() + 900
    while not (out / "run_info.json").exists():
        queued = subprocess.run(["squeue", "-h", "-o", "%j"], capture_output=True, text=True).stdout.split()
        if not any(j.startswith("fromscratch-") for j in queued) and not (out / "run_info.json").exists():
            failed = sorted(str(p) for p in logs.rglob("*.out"))[-3:]
            raise AssertionError(f"no output and no job left; logs: {failed}\n"
                                 + "".join(Path(p).read_text()[-2000:] for p in failed))
        assert time.time() < deadline, "the Slurm jobs did not finish in 15 minutes"
        time.sleep(1)
    assert _result(out) == one_task
