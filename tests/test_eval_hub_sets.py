"""The full suite without data_dir reads every benchmark from its Hub id. Here the same `datasets.load_dataset`
call reads a local mirror laid out like the Hub repos (tests/benchmark_fixtures.py; HF_DATASETS_OFFLINE=1, no
download), and each task's rows come out in the format its YAML scores, as written out by hand."""

from __future__ import annotations

import pytest
import yaml

import benchmark_fixtures as fx
from fromscratch.config import UserError
from fromscratch.evaluation import hub_sets, readers, tasks, toxicity


class _TaskLoader(yaml.SafeLoader):
    pass


_TaskLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def dataset_kwargs(task: str) -> dict:
    """The task's dataset_kwargs, its template's under its own (lm-eval's `include:`)."""
    config = yaml.load((tasks.TASK_DIR / f"{task}.yaml").read_text(), Loader=_TaskLoader)
    include = config.get("include")
    base = yaml.load((tasks.TASK_DIR / include).read_text(), Loader=_TaskLoader) if include else {}
    return {**base.get("dataset_kwargs", {}), **config.get("dataset_kwargs", {})}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    return fx.write_mirror(tmp_path_factory.mktemp("hub"))


def loaders():
    from fromscratch.eval_tasks import loaders

    return loaders


def test_every_full_suite_task_names_a_hub_set_and_a_row_mapping():
    full = [t for t in tasks.available_tasks() if t != "fs_heldout"]
    assert set(fx.EXPECTED) == set(full)  # the hand-written expectations cover every task
    for task in full:
        kwargs = dataset_kwargs(task)
        assert kwargs["hub_rows"] in hub_sets.MAPPERS, task
        repo, config, split = hub_sets.parse(kwargs["hub"])
        assert (repo, config, split) in fx.SETS, task


@pytest.mark.parametrize("task", sorted(fx.EXPECTED))
def test_without_data_dir_files_each_task_reads_its_hub_set(mirror, task):
    got = loaders().load(**dataset_kwargs(task), suite="full", data_dir=str(mirror))["test"].to_list()
    assert got == fx.EXPECTED[task]


def test_a_malformed_hub_row_is_counted_not_dropped_silently(mirror):
    got = loaders().load(**dataset_kwargs("fs_crows_pairs"), suite="full", data_dir=str(mirror))["test"]
    assert len(got) == 1
    (skipped,) = readers.SKIPPED["jannalu/crows_pairs_multilingual:english@test"]
    assert skipped.startswith("jannalu/crows_pairs_multilingual:test:1 (ValueError")


def test_a_local_file_under_data_dir_wins_over_the_hub(mirror, tmp_path):
    (tmp_path / "eval-tasks").mkdir()
    (tmp_path / "eval-tasks" / "arc_easy.jsonl").write_text('{"query": "q", "choices": ["a", "b"], "gold": 1}\n')
    got = loaders().load(**dataset_kwargs("fs_arc_easy"), suite="full", data_dir=str(tmp_path))["test"].to_list()
    assert got == [{"query": "q", "choices": ["a", "b"], "gold": 1}]


def test_offline_without_a_mirror_is_one_line_naming_the_set(tmp_path):
    with pytest.raises(UserError, match=r"benchmark set allenai/ai2_arc: cannot load allenai/ai2_arc \(ARC-Easy\)"):
        loaders().load(**dataset_kwargs("fs_arc_easy"), suite="full", data_dir=None)


def test_bold_prompts_of_the_full_suite_come_from_the_hub_set(mirror):
    rows, skipped = toxicity.bold_prompts("full", str(mirror))
    assert rows == fx.BOLD_EXPECTED and skipped == []
    one, _ = toxicity.bold_prompts("full", str(mirror), per_domain=1, seed=0)
    assert sorted(r["domain"] for r in one) == ["gender", "profession"]
    tiny, _ = toxicity.bold_prompts("tiny", per_domain=2, seed=0)
    assert len(tiny) == 10 and tiny == toxicity.bold_prompts("tiny", per_domain=2, seed=0)[0]  # seeded
