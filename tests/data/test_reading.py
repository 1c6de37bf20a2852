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
    assert [u.kind for u in units] == ["parquet", "parquet"]  # the recipe reads its train files, one unit each


def test_a_folder_of_hidden_files_only_is_one_line_for_every_reader(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / ".notes.txt").write_text("x\n")
    for read in (lambda: reading.list_units([str(tmp_path / "d")], "text", [], reading.UNIT_BYTES),
                 lambda: sources.load_documents(str(tmp_path / "d"))):
        with pytest.raises(sources.UserError, match=r"data path is empty: .*/d \(files and folders whose name starts"):
            read()


def test_missing_source_and_unreachable_hub_fail_at_listing(tmp_path):
    from fromscratch.config import UserError

    with pytest.raises(UserError, match="data path not found"):
        reading.list_units([str(tmp_path / "nope.jsonl")], "text")
    with pytest.raises(UserError, match="cannot load Hub dataset 'nobody/nothing'"):
        reading.list_units(["nobody/nothing"], "text")


# --- units of bounded size: any file is cut at document edges, every document read exactly once -------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_WORDS = st.sampled_from(["to", "be", "or", "not", "é", "naïve", "—", "{\"x\": 1}", "   ", "\t", "\r", "日本"])
_LINE = st.lists(_WORDS, max_size=6).map(" ".join)
_TEXT = st.lists(_LINE, max_size=60).map("\n".join)


def _read_all(units, column="text"):
    lin = Lineage("s", "", "")
    return [t for u in units for _, t in reading.read_unit(u, column, lin)], lin


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_TEXT, unit_bytes=st.integers(1, 300), text_unit=st.sampled_from(["paragraph", "line"]))
def test_a_text_file_cut_into_units_gives_the_documents_of_the_whole(tmp_path_factory, text, unit_bytes, text_unit):
    f = tmp_path_factory.mktemp("cut") / "book.txt"
    f.write_bytes(text.encode("utf-8"))
    whole = sources.text_documents(text, text_unit, str(f), Lineage("s", "", ""))
    units = reading.list_units([str(f)], "text", [text_unit], unit_bytes)
    docs, _ = _read_all(units)
    assert docs == whole  # each document once, in order, none cut in two
    spans = [(u.start, u.stop or f.stat().st_size) for u in units]
    assert all(a < b for a, b in spans) or spans == [(0, 0)]  # no unit is empty
    assert [a for a, _ in spans[1:]] == [b for _, b in spans[:-1]]  # contiguous: no byte read twice or skipped
    ids = [reading.gid(u, r) for u in units for r, _ in reading.read_unit(u, "text", Lineage("s", "", ""))]
    assert len(set(ids)) == len(ids)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.one_of(st.text(max_size=20).map(lambda t: {"text": t}), st.just("{broken"),
                               st.just({"other": 1}), st.just("")), max_size=40),
       unit_bytes=st.integers(1, 200))
def test_jsonl_cut_into_units_counts_each_bad_row_at_its_own_line(tmp_path_factory, rows, unit_bytes):
    import json

    f = tmp_path_factory.mktemp("cut") / "rows.jsonl"
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    f.write_text("\n".join(lines), encoding="utf-8")
    whole = Lineage("s", "", "")
    expected = sources.json_documents(f.read_text(encoding="utf-8"), str(f), "text", whole)
    docs, lin = _read_all(reading.list_units([str(f)], "text", None, unit_bytes))
    assert docs == expected and lin.skipped == whole.skipped
    bad = [i + 1 for i, line in enumerate(lines) if line and not (line.startswith("{\"text\"")
                                                                   and json.loads(line)["text"].strip())]
    assert [int(x.split(":")[-2]) for x in lin.skipped_examples] == bad[:5]  # file:line as in the file


def test_one_large_file_is_many_units_and_a_small_or_uncuttable_one_is_one(tmp_path):
    big = tmp_path / "big.jsonl"
    big.write_text("".join(f'{{"text": "row {i} of the one large file"}}\n' for i in range(20_000)))
    units = reading.list_units([str(big)], "text", None, 64 << 10)
    size = big.stat().st_size
    assert len(units) == -(-size // (64 << 10)) or len(units) == size // (64 << 10)  # about size / unit size
    assert max((u.stop or size) - u.start for u in units) < (64 << 10) + 100  # bounded: a unit + one row
    docs, _ = _read_all(units)
    assert docs == [f"row {i} of the one large file" for i in range(20_000)]
    book = tmp_path / "book.txt"
    book.write_text("one document\n\n" * 10_000)
    assert len(reading.list_units([str(book)], "text", ["file"], 1024)) == 1  # a document is never cut
    assert len(reading.list_units([str(book)], "text", ["paragraph"], 1024)) > 100


def test_parquet_row_groups_are_units_each_row_read_once(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"text": [f"row {i} " + "x" * 200 for i in range(5000)]}), f, row_group_size=500)
    units = reading.list_units([str(f)], "text", None, 64 << 10)
    assert len(units) > 3 and all(u.kind == "parquet" for u in units)
    docs, _ = _read_all(units)
    assert docs == [f"row {i} " + "x" * 200 for i in range(5000)]
    assert len({reading.unit_hash(u) for u in units}) == len(units)


@pytest.mark.parametrize("unit, expected", [("file", 1), ("paragraph", 3), ("line", 5)])
def test_text_unit_decides_what_a_document_is(tmp_path, unit, expected):
    f = tmp_path / "plays.txt"
    f.write_text("ROMEO:\nBut soft!\n\nJULIET:\nAy me.\n\n\nNURSE: Anon!\n")
    docs, _ = _read_all(reading.list_units([str(f)], "text", [unit]))
    assert len(docs) == expected, docs


def test_text_unit_defaults_and_errors():
    from fromscratch.config import UserError

    assert reading.text_units_of(["default:tinyshakespeare", "a.txt"], None) == ["paragraph", "file"]
    assert reading.text_units_of(["a.txt", "b.txt"], ["line"]) == ["line", "line"]
    with pytest.raises(UserError, match="text_unit: 3 values for 2 sources"):
        reading.text_units_of(["a.txt", "b.txt"], ["line"] * 3)
