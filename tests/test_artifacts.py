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
    tmp = artifacts.prepare(out)
    (tmp / "checkpoint-10").mkdir()
    (tmp / "checkpoint-10" / "trainer_state.json").write_text("{}")
    (tmp / "checkpoint-20").mkdir()  # a kill during this save: no trainer_state.json, not usable
    with pytest.raises(UserError, match="unfinished run: pass --resume"):
        artifacts.prepare(out)
    assert artifacts.prepare(out, resume=True) == tmp
    assert artifacts.newest_checkpoint(tmp).name == "checkpoint-10"
    with pytest.raises(UserError, match="no unfinished run"):
        artifacts.prepare(tmp_path / "other", resume=True)
