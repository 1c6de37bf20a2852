"""The Slurm launcher, run against stand-ins for srun, scontrol, nvidia-smi and accelerate."""

import os
import stat
import subprocess

import pytest

from conftest import ROOT

STUBS = {
    "scontrol": 'printf "node-a\\nnode-b\\n"',
    "nvidia-smi": 'for i in 0 1 2 3 4 5 6 7; do echo "GPU $i: H100"; done',
    # srun: drop its options, run the task once per node with that node's SLURM_NODEID.
    "srun": 'while [[ $1 == --* ]]; do shift; done\nfor n in 0 1; do SLURM_NODEID=$n "$@"; done',
    "accelerate": 'echo "$SLURM_NODEID $*" >> "$CALLS"',
}


def install_stubs(tmp_path, stubs):
    """The stand-ins as executables: accelerate in a venv's bin, the rest first on PATH. Returns (bin, venv)."""
    bin_dir, venv = tmp_path / "bin", tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    bin_dir.mkdir()
    for name, body in stubs.items():
        path = (venv / "bin" if name == "accelerate" else bin_dir) / name
        path.write_text("#!/bin/bash\n" + body + "\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return bin_dir, venv


def launch(tmp_path, *args):
    bin_dir, venv = install_stubs(tmp_path, STUBS)
    calls = tmp_path / "calls.txt"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", VENV=str(venv), CALLS=str(calls),
               SLURM_NNODES="2", SLURM_JOB_NODELIST="node-[a-b]")
    proc = subprocess.run(["bash", str(ROOT / "accelerate_configs/launch.slurm"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [line.split() for line in calls.read_text().splitlines()]


def value(call, flag):
    return call[call.index(flag) + 1]


def test_one_accelerate_launch_per_node_with_its_rank_and_the_head_address(tmp_path):
    calls = launch(tmp_path, "recipes/03_pretrain/run.py", "recipes/03_pretrain/config_1b.yaml", "--max_steps", "10")
    assert [c[0] for c in calls] == ["0", "1"]
    for node, call in enumerate(calls):
        assert value(call, "--machine_rank") == str(node)
        assert value(call, "--main_process_ip") == "node-a"
        assert value(call, "--num_machines") == "2" and value(call, "--num_processes") == "16"
        assert value(call, "--config_file") == "accelerate_configs/multi_node.yaml"
        assert call[-5:] == ["recipes/03_pretrain/run.py", "--config", "recipes/03_pretrain/config_1b.yaml",
                             "--max_steps", "10"]
        assert "--deepspeed_multinode_launcher" not in call


def test_deepspeed_config_uses_the_standard_multinode_launcher(tmp_path):
    calls = launch(tmp_path, "recipes/03_pretrain/run.py", "c.yaml", "accelerate_configs/deepspeed_zero3.yaml")
    assert all(value(c, "--deepspeed_multinode_launcher") == "standard" for c in calls)
    assert all(value(c, "--config_file") == "accelerate_configs/deepspeed_zero3.yaml" for c in calls)


def test_missing_arguments_print_usage(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "accelerate_configs/launch.slurm")], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage" in proc.stderr


# A run that takes signals like the real ones: srun forwards USR1/TERM to its task, the task (the recipe under
# accelerate) checkpoints and exits when it gets one.
SIGNAL_STUBS = {
    "scontrol": 'if [ "$1" = requeue ]; then echo "requeue $2" >> "$CALLS"; else printf "node-a\\n"; fi',
    "srun": ('while [[ $1 == --* ]]; do shift; done\nSLURM_NODEID=0 "$@" & child=$!\n'
             "trap 'kill -USR1 $child' USR1\ntrap 'kill -TERM $child' TERM\n"
             "while kill -0 $child 2>/dev/null; do wait $child; done"),
    "accelerate": ("trap 'echo \"checkpointed after USR1\" >> \"$CALLS\"; exit 0' USR1\n"
                   "trap 'echo \"checkpointed after TERM\" >> \"$CALLS\"; exit 0' TERM\n"
                   'echo started >> "$CALLS"\nwhile :; do sleep 0.05; done'),
}


@pytest.mark.parametrize("sig, requeued", [("USR1", True), ("TERM", False)])
def test_time_limit_signal_reaches_the_run_and_requeues_the_job(tmp_path, sig, requeued):
    import signal
    import time

    bin_dir, venv = install_stubs(tmp_path, {**STUBS, **SIGNAL_STUBS})
    calls = tmp_path / "calls.txt"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", VENV=str(venv), CALLS=str(calls),
               SLURM_NNODES="1", SLURM_JOB_NODELIST="node-a", SLURM_JOB_ID="1234", GPUS_PER_NODE="8")
    proc = subprocess.Popen(["bash", str(ROOT / "accelerate_configs/launch.slurm"), "recipes/03_pretrain/run.py",
                             "c.yaml"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not (calls.exists() and "started" in calls.read_text()):
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(getattr(signal, f"SIG{sig}"))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = calls.read_text().splitlines()
    # the run got TERM through srun (the launcher would die of USR1 instead of forwarding it)
    assert "checkpointed after TERM" in lines
    assert ("requeue 1234" in lines) == requeued, (lines, out)


def test_a_real_slurm_job_trains_on_two_cpu_ranks(slurm_cluster, tokenizer_dir, tmp_path):
    """launch.slurm under a real sbatch (tests/slurm/start_local_cluster.sh), one node, 2 CPU ranks (gloo): the
    GPU header lines are overridden on the command line as a user on a CPU partition would."""
    import json
    import sys

    from conftest import free_port, recipe_env

    out, log = tmp_path / "out", tmp_path / "job.log"
    env = recipe_env({"GPUS_PER_NODE": "2", "VENV": sys.prefix, "MASTER_PORT": str(free_port())})
    proc = subprocess.run(
        ["sbatch", "--wait", "--partition", slurm_cluster, "--nodes", "1", "--gres=none", "--output", str(log),
         "--time", "00:15:00", "accelerate_configs/launch.slurm", "recipes/03_pretrain/run.py",
         "recipes/03_pretrain/config_tiny.yaml", "accelerate_configs/cpu_ddp.yaml", "--preset", "nano",
         "--sources", "default:tinyshakespeare", "--tokenizer_dir", str(tokenizer_dir), "--block_size", "64",
         "--max_steps", "4", "--eval_steps", "2", "--save_steps", "4", "--eval_tokens", "1024",
         "--final_eval_tokens", "1024", "--report_to", "none", "--disable_tqdm", "true", "--output_dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=960)
    text = log.read_text() if log.exists() else ""
    assert proc.returncode == 0, (proc.stderr, text[-4000:])
    assert "[slurm] 1 nodes x 2 GPUs, head" in text
    assert text.count("[model] llama/nano") == 2  # both ranks built the model
    metrics = json.loads((out / "run_info.json").read_text())["metrics"]
    assert metrics["steps"] == 4 and metrics["eval_loss"] < metrics["initial_eval_loss"]
