import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fromscratch import sources
from fromscratch.config import UserError
from fromscratch.tokenization.text_stream import iter_documents

TRAIN = [f"document number {i} " + "word " * (i % 7) for i in range(2500)]


def _parquet_folder(root, train, validation):
    (root / "train").mkdir(parents=True)
    (root / "validation").mkdir()
    half = len(train) // 2
    for k, part in enumerate((train[:half], train[half:])):  # two shards: order is the shards' order
        pq.write_table(pa.table({"text": part, "source": ["s"] * len(part)}), root / "train" / f"part-{k}.parquet",
                       row_group_size=300)
    pq.write_table(pa.table({"text": validation, "source": ["s"] * len(validation)}),
                   root / "validation" / "part-0.parquet")
    return root


def _flat(batches):
    return [doc for batch in batches for doc in batch]


def test_save_to_disk_streams_the_train_split_and_counts_empty_rows(tmp_path):
    train = TRAIN[:1500] + ["", "   "] + TRAIN[1500:]
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": train, "source": ["s"] * len(train)}),
        "validation": datasets.Dataset.from_dict({"text": ["held out"], "source": ["s"]}),
    }).save_to_disk(str(tmp_path / "saved"))
    batches, lineage = iter_documents(str(tmp_path / "saved"), batch_size=64)
    first = next(batches)
    assert len(first) == 64 and lineage.documents == 64  # read as it goes, not all at once
    docs = first + _flat(batches)
    assert docs == TRAIN == sources.load_documents(str(tmp_path / "saved"))[0]  # same documents as in memory
    assert lineage.documents == len(TRAIN) and lineage.skipped == {"empty or non-string text": 2}
    assert lineage.bytes == sum(len(d.encode()) for d in TRAIN) and len(lineage.sha256) == 64
    val, val_lineage = iter_documents(str(tmp_path / "saved"), split="validation")
    assert _flat(val) == ["held out"] and val_lineage.spec.endswith("[validation]")


def test_parquet_shards_train_and_validation_apart(tmp_path):
    root = _parquet_folder(tmp_path / "data", TRAIN, ["v1", "v2"])
    batches, lineage = iter_documents(str(root), batch_size=1000)
    got = list(batches)
    assert [len(b) for b in got] == [1000, 1000, 500]
    assert _flat(got) == TRAIN and lineage.documents == len(TRAIN)
    assert _flat(iter_documents(str(root), split="validation")[0]) == ["v1", "v2"]
    assert iter_documents(str(root), split="test") is None


def test_other_sources_fall_back_to_the_in_memory_reader(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "one"}\n{"text": "two"}\n{"text": "three"}\n')
    batches, lineage = iter_documents(str(p), batch_size=2)
    assert list(batches) == [["one", "two"], ["three"]] and lineage.documents == 3
    assert iter_documents(str(p), split="validation") is None
    assert iter_documents("default:tinyshakespeare", split="validation") is None


def test_wrong_column_and_empty_split_are_user_errors(tmp_path):
    root = _parquet_folder(tmp_path / "data", ["", " "], ["v"])
    with pytest.raises(UserError, match="no column 'body'"):
        list(iter_documents(str(root), "body")[0])
    with pytest.raises(UserError, match="no usable documents"):
        list(iter_documents(str(root))[0])
