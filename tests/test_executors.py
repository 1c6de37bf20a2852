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


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(sizes=st.lists(st.integers(0, 64 << 20), min_size=1, max_size=400), workers=st.integers(1, 64),
       share=st.sampled_from([1 << 20, 16 << 20, 64 << 20]))
def test_default_tasks_keep_a_share_near_a_unit_and_never_exceed_the_units(sizes, workers, share):
    from fromscratch.executors import tasks_for

    n = tasks_for(sizes, share, workers)
    assert 1 <= n <= len(sizes)
    assert n >= min(len(sizes), 4 * workers)  # many tiny files: still every worker busy
    if n < len(sizes):  # more tasks were possible: each task's share is at most `share` on average
        assert sum(sizes) <= n * share


def test_one_huge_file_gets_a_task_per_unit_and_many_tiny_files_four_per_worker():
    from fromscratch.executors import tasks_for

    assert tasks_for([16 << 20] * 50, 16 << 20, workers=2) == 50  # one 800 MB file cut in 50 units
    assert tasks_for([8 << 20] * 100, 16 << 20, workers=2) == 50  # 100 files of 8 MB: two per task
    assert tasks_for([1000] * 10_000, 16 << 20, workers=2) == 8  # 10,000 files of 1 KB
