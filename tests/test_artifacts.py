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
