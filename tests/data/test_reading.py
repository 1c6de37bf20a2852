"""Units of work of the data stage: Hub datasets streamed shard by shard, data-stage outputs as sources."""

import datasets
import pytest

from fromscratch import sources
from fromscratch.data import reading
from fromscratch.sources import Lineage


def _parquet_files(folder, n_files=3, rows=4):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n_files):
        p = folder / f"{k:05d}.parquet"
        texts = [f"document {k}-{i}" for i in range(rows)] + ([""] if k == 1 else [])  # one empty row
        datasets.Dataset.from_dict({"text": texts, "source": ["s"] * len(texts)}).to_parquet(str(p))
        paths.append(str(p))
    return paths


def test_hub_dataset_is_streamed_one_unit_per_shard(tmp_path, monkeypatch):
    files = _parquet_files(tmp_path / "hub")
    calls, real = [], datasets.load_dataset

    def fake(repo, config=None, split=None, streaming=False):
        calls.append((repo, config, split, streaming))
        return real("parquet", data_files=files, split="train", streaming=True)

    monkeypatch.setattr(sources.datasets, "load_dataset", fake)
    units = reading.list_units(["org/corpus:sample"], "text")
    assert [u.kind for u in units] == ["hub"] * 3 and calls[0] == ("org/corpus", "sample", "train", True)
    lin = Lineage("org/corpus:sample", "", "")
    texts = [t for u in units for _, t in reading.read_unit(u, "text", lin)]
    assert sorted(texts) == sorted(f"document {k}-{i}" for k in range(3) for i in range(4))
    assert lin.skipped == {"empty or non-string text": 1} and "#shard1" in lin.skipped_examples[0]
    ids = {reading.gid(u, r) for u in units for r in range(4)}
    assert len(ids) == 12 and set(reading.source_of(i) for i in ids) == {0}


def test_a_data_stage_output_is_a_source_everywhere(tmp_path):
    out = tmp_path / "01_data"
    _parquet_files(out / "train", 2)
    held = datasets.Dataset.from_dict({"text": ["held out"], "source": ["s"]})
    held.to_parquet(str(out / "validation" / "0.parquet"))
    docs, lineage = sources.load_documents(str(out))
    assert len(docs) == 8 and "held out" not in docs and lineage.skipped  # the empty row, counted
    val, _ = sources.load_validation([str(out)])
    assert val == ["held out"]
    units = reading.list_units([str(out)], "text")
    assert [u.kind for u in units] == ["table", "table"]  # the recipe reads its train files, one unit each


def test_missing_source_and_unreachable_hub_fail_at_listing(tmp_path):
    from fromscratch.config import UserError

    with pytest.raises(UserError, match="data path not found"):
        reading.list_units([str(tmp_path / "nope.jsonl")], "text")
    with pytest.raises(UserError, match="cannot load Hub dataset 'nobody/nothing'"):
        reading.list_units(["nobody/nothing"], "text")
