import pytest

from fromscratch import artifacts
from fromscratch.config import UserError


def test_finished_output_is_never_overwritten_by_accident(tmp_path):
    out = tmp_path / "stage"
    tmp = artifacts.prepare(out)
    (tmp / "model.bin").write_text("v1")
    with pytest.raises(RuntimeError, match="incomplete"):
        artifacts.finish(tmp, out)  # no run_info.json yet: not publishable
    (tmp / "run_info.json").write_text("{}")
    artifacts.finish(tmp, out)
    assert (out / "model.bin").read_text() == "v1" and not tmp.exists()
    with pytest.raises(UserError, match="already holds a finished run: pass --overwrite"):
        artifacts.prepare(out)
    tmp = artifacts.prepare(out, overwrite=True)
    (tmp / "model.bin").write_text("v2")
    (tmp / "run_info.json").write_text("{}")
    artifacts.finish(tmp, out)
    assert (out / "model.bin").read_text() == "v2"


def test_unfinished_run_needs_resume_or_overwrite(tmp_path):
    out = tmp_path / "stage"
    tmp = artifacts.prepare(out, resume=False)
    (tmp / "checkpoint-10").mkdir()
    (tmp / "checkpoint-10" / "trainer_state.json").write_text("{}")
    (tmp / "checkpoint-20").mkdir()  # a kill during this save: no trainer_state.json, not usable
    with pytest.raises(UserError, match="unfinished run: pass --resume"):
        artifacts.prepare(out, resume=False)
    assert artifacts.prepare(out, resume=True) == tmp
    assert artifacts.newest_checkpoint(tmp).name == "checkpoint-10"
    with pytest.raises(UserError, match="no unfinished run"):
        artifacts.prepare(tmp_path / "other", resume=True)


def test_half_written_state_and_other_shape_checkpoints(tmp_path):
    import json

    from transformers import LlamaConfig

    (tmp_path / "checkpoint-5").mkdir()
    (tmp_path / "checkpoint-5" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-5" / "config.json").write_text(json.dumps(LlamaConfig(hidden_size=64).to_dict()))
    (tmp_path / "checkpoint-9").mkdir()
    (tmp_path / "checkpoint-9" / "trainer_state.json").write_text('{"log_hist')  # killed while writing
    ckpt = artifacts.newest_checkpoint(tmp_path)
    assert ckpt.name == "checkpoint-5"
    artifacts.check_checkpoint_shape(ckpt, LlamaConfig(hidden_size=64))
    with pytest.raises(UserError, match="different model .*hidden_size 64 vs 128"):
        artifacts.check_checkpoint_shape(ckpt, LlamaConfig(hidden_size=128))


# --- a run holds its output folder for its whole life (issue 28: --overwrite deleted a live run's .tmp) -------

def _holder(out, tmp_path):
    """Another process that prepared `out` and is still writing: it holds the lock until killed."""
    import subprocess
    import sys
    import time

    from conftest import recipe_env

    ready = tmp_path / "ready"
    code = (f"import time, pathlib; from fromscratch import artifacts; t = artifacts.prepare({str(out)!r}); "
            f"(t / 'checkpoint-1').mkdir(); pathlib.Path({str(ready)!r}).write_text('1'); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=recipe_env())
    for _ in range(300):
        if ready.exists():
            return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the holder did not start")


@pytest.mark.parametrize("how", [dict(overwrite=True), dict(resume=True), dict(resume="auto"),
                                 dict(overwrite=True, resume=True), dict()])
def test_a_second_run_into_a_live_runs_folder_is_refused_and_changes_nothing(tmp_path, how):
    import signal

    out = tmp_path / "out"
    proc = _holder(out, tmp_path)
    try:
        before = sorted(p.name for p in artifacts.tmp_dir(out).iterdir())
        with pytest.raises(UserError, match=r"another run is writing .*out\.tmp now|holds an unfinished run"):
            artifacts.prepare(out, **how)
        assert sorted(p.name for p in artifacts.tmp_dir(out).iterdir()) == before  # its work is untouched
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the kernel released the lock with the process: now the folder can be continued
    assert artifacts.prepare(out, resume=True) == artifacts.tmp_dir(out)
    assert (artifacts.tmp_dir(out) / "checkpoint-1").is_dir()


def test_a_recipe_started_into_a_live_runs_folder_says_so_in_one_line(tmp_path):
    import signal

    from conftest import error_line, run_recipe

    out = tmp_path / "tok"
    proc = _holder(out, tmp_path)
    try:
        line = error_line(run_recipe("02_tokenizer", "--config", "recipes/02_tokenizer/config_tiny.yaml",
                                     "--output_dir", str(out), "--overwrite", "true", ok=False))
        assert line == f"error: output_dir: another run is writing {artifacts.tmp_dir(out)} now: wait for it to " \
                       "finish, or stop it first (nothing was changed)"
        assert (artifacts.tmp_dir(out) / "checkpoint-1").is_dir()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_the_lock_does_not_travel_into_the_finished_output(tmp_path):
    out = tmp_path / "o"
    tmp = artifacts.prepare(out)
    assert (tmp / artifacts.LOCK).exists()
    (tmp / artifacts.FINISHED_MARKER).write_text("{}")
    (tmp / "plan.json").write_text("{}")
    artifacts.finish(tmp, out)
    assert sorted(p.name for p in out.iterdir()) == ["plan.json", artifacts.FINISHED_MARKER]


def test_an_output_of_records_only_is_never_published(tmp_path):
    out = tmp_path / "out"
    tmp = artifacts.prepare(out)
    for name in ("run_info.json", "README.md", "config.yaml"):
        (tmp / name).write_text("{}")
    with pytest.raises(UserError, match="holds only the run's records and no result: nothing was published"):
        artifacts.finish(tmp, out)
    assert not out.exists()
    (tmp / "model.safetensors").write_text("x")
    assert artifacts.finish(tmp, out) == out and (out / "model.safetensors").exists()
