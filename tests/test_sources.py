import gzip
import json

import datasets
import pytest

from fromscratch import sources
from fromscratch.config import UserError


def test_default_corpora_are_embedded_and_latin1_is_repaired_and_counted():
    docs, lineage = sources.load_documents("default:us_speeches")
    assert lineage.documents == len(docs) == 124  # 59 inaugural + 65 State of the Union addresses
    assert len(lineage.repaired_encoding) >= 1  # some shipped files are Latin-1
    assert not any("\ufffd" in d for d in docs)  # cp1252 decoding leaves no replacement characters
    shakespeare, lin = sources.load_documents("default:tinyshakespeare")
    assert shakespeare[0].startswith("First Citizen:") and lin.documents > 5000
    assert len(lin.sha256) == 64


def test_malformed_jsonl_rows_are_counted_with_location(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "good one"}\n{not json\n{"other": 1}\n{"text": ""}\n\n{"text": "good two"}\n')
    docs, lineage = sources.load_documents(str(p))
    assert docs == ["good one", "good two"]
    assert sum(lineage.skipped.values()) == 3
    assert f"{p}:2" in lineage.skipped_examples[0]
    assert "skipped" in lineage.summary()


def test_text_folder_parquet_and_save_to_disk(tmp_path):
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "a.txt").write_text("alpha")
    (tmp_path / "txt" / "b.txt").write_bytes("caf\xe9".encode("cp1252"))
    docs, lineage = sources.load_documents(str(tmp_path / "txt"))
    assert docs == ["alpha", "café"] and lineage.repaired_encoding
    ds = datasets.Dataset.from_dict({"content": ["x y", "z"]})
    ds.to_parquet(str(tmp_path / "d.parquet"))
    assert sources.load_documents(str(tmp_path / "d.parquet"), "content")[0] == ["x y", "z"]
    datasets.DatasetDict({"train": ds, "validation": ds.select([0])}).save_to_disk(str(tmp_path / "saved"))
    assert sources.load_documents(str(tmp_path / "saved"), "content")[0] == ["x y", "z"]
    with pytest.raises(UserError, match="no column 'text'"):
        sources.load_documents(str(tmp_path / "saved"))


def test_hub_id_goes_through_load_dataset(tmp_path, monkeypatch):
    """The Hub path cannot run offline: drive the same branch with load_dataset served from a local folder."""
    datasets.Dataset.from_dict({"text": ["from the hub"]}).save_to_disk(str(tmp_path / "hub"))
    calls = []

    def fake_load_dataset(repo, name=None, split=None):
        calls.append((repo, split))
        return datasets.load_from_disk(str(tmp_path / "hub"))

    monkeypatch.setattr(sources.datasets, "load_dataset", fake_load_dataset)
    docs, lineage = sources.load_documents("HuggingFaceFW/fineweb-edu")
    assert calls == [("HuggingFaceFW/fineweb-edu", "train")] and docs == ["from the hub"]
    assert lineage.resolved == "hub:HuggingFaceFW/fineweb-edu"


def test_unreachable_hub_id_and_missing_path_fail_with_one_line():
    with pytest.raises(UserError, match="cannot load Hub dataset 'nobody/nothing'") as err:
        sources.load_documents("nobody/nothing")
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="data path not found: ./missing.txt"):
        sources.check_sources(["./missing.txt"])
    with pytest.raises(UserError, match="unknown embedded source"):
        sources.check_sources(["default:nope"])


def test_shipped_data_matches_its_source():
    """The embedded copy is the shared dataset unchanged (the data card says so)."""
    from conftest import SHARED_DATA

    original = SHARED_DATA / "tinyshakespeare" / "input.txt"
    if not original.exists():
        pytest.skip("shared data not beside this checkout")
    assert (sources.embedded_path("tinyshakespeare") / "input.txt").read_bytes() == original.read_bytes()


def test_validation_split_of_a_saved_dataset_dict_is_used_as_held_out(tmp_path):
    train = datasets.Dataset.from_dict({"text": ["a b", "a b", "c d"]})  # the data stage repeats documents
    val = datasets.Dataset.from_dict({"text": ["held out"]})
    datasets.DatasetDict({"train": train, "validation": val}).save_to_disk(str(tmp_path / "data"))
    docs, lineages = sources.load_validation([str(tmp_path / "data"), "default:us_speeches"])
    assert docs == ["held out"] and lineages[0].spec.endswith("[validation]")
    assert sources.load_validation(["default"]) == ([], [])
