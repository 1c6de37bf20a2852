"""Scheduler shards: every N-th document per job, and a merge that refuses an incomplete set."""

import datasets
import pytest

from fromscratch.config import UserError
from fromscratch.data import shards
from fromscratch.data.stats import StepStats


def _shard(root, i, n, texts):
    folder = root / f"shard-{i}"
    folder.mkdir(parents=True)
    stats = StepStats()
    stats.record("load", ["s"] * len(texts), [""] * len(texts))
    shards.save(folder, datasets.Dataset.from_dict({"text": texts, "source": ["s"] * len(texts)}), stats, n, i)
    (folder / "run_info.json").write_text("{\"lineage\": []}")
    return folder


def test_select_covers_every_row_once():
    rows = sorted(r for i in range(3) for r in shards.select(10, 3, i))
    assert rows == list(range(10))
    with pytest.raises(UserError):
        shards.select(10, 3, 3)


def test_merge_in_shard_order_and_refuse_missing(tmp_path):
    _shard(tmp_path, 1, 2, ["c", "d"])
    with pytest.raises(UserError, match=r"shards \[0\] of 2 are missing or unfinished"):
        shards.load(str(tmp_path))
    _shard(tmp_path, 0, 2, ["a", "b"])
    ds, _, stats = shards.load(str(tmp_path))
    assert ds["text"] == ["a", "b", "c", "d"] and stats.to_dict()[0]["in"] == 4
