"""The executor factory: one key picks where datatrove tasks run; completion markers make reruns skip work."""

from __future__ import annotations

import pytest
from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from fromscratch.config import UserError
from fromscratch.executors import ExecutorArguments, build, check


class _Count(PipelineStep):
    """Writes how many documents its task saw and how many times it ran."""

    def __init__(self, out):
        super().__init__()
        self.out = out

    def run(self, data, rank=0, world_size=1):
        runs = self.out / f"runs-{rank}"
        runs.write_text(str(int(runs.read_text()) + 1 if runs.exists() else 1))
        yield from ()


def test_local_executor_runs_every_task_once_and_skips_finished_ones_on_rerun(tmp_path):
    args = ExecutorArguments(workers=2)
    build([_Count(tmp_path)], args, str(tmp_path / "logs"), name="t", tasks=3).run()
    assert sorted(p.name for p in tmp_path.glob("runs-*")) == ["runs-0", "runs-1", "runs-2"]
    (tmp_path / "logs" / "completions" / "00001").unlink()  # as if task 1 had been killed
    build([_Count(tmp_path)], args, str(tmp_path / "logs"), name="t", tasks=3).run()
    assert [(tmp_path / f"runs-{r}").read_text() for r in range(3)] == ["1", "2", "1"]


@pytest.mark.parametrize("bad, message", [
    (dict(executor="spark"), "executor: must be one of"),
    (dict(tasks=0), "tasks must be >= 1"),
    (dict(executor="slurm"), "slurm needs slurm_partition"),
])
def test_bad_executor_settings_fail_in_one_line(bad, message):
    with pytest.raises(UserError, match=message):
        check(ExecutorArguments(**bad))
