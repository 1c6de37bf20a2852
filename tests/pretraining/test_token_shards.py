"""Token shards: written exactly (bos + tokens + eos per document, uint16 or uint32), read as windows that cover
the tokens, split disjointly between DDP ranks, mixed at the token level; the fingerprint and tokenizer checks."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from conftest import tokenize_here
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from fromscratch.config import UserError
from fromscratch.pretraining import data_order, streaming, token_shards
from fromscratch.pretraining.token_writer import token_dtype
from fromscratch.sources import load_documents


def documents(folder: Path, meta: dict, split: str) -> list[list[int]]:
    docs = []
    for shard in meta["splits"][split]["shards"]:
        tokens = np.fromfile(folder / shard["file"], dtype=np.dtype(meta["dtype"]))
        ends = np.fromfile(str(folder / shard["file"]) + ".index", dtype="<u8")
        docs += [tokens[a:b].tolist() for a, b in zip([0, *ends[:-1].tolist()], ends.tolist())]
    return docs


def data_stage_folder(root: Path, docs: list[str], val: list[str]) -> Path:
    """The data stage's new output: train/*.parquet (two files, row groups of 50) and validation/*.parquet."""
    for split, rows, files in (("train", docs, 2), ("validation", val, 1)):
        (root / split).mkdir(parents=True)
        for k in range(files):
            part = rows[k::files]
            pq.write_table(pa.table({"text": part, "source": ["x"] * len(part)}), root / split / f"{k:05d}.parquet",
                           row_group_size=50)
    return root


@pytest.fixture(scope="module")
def texts():
    docs, _ = load_documents("default:us_speeches")
    return [p for d in docs for p in d.split("\n\n") if p.strip()][:600]


def test_round_trip_parquet_and_save_to_disk(tokenizer_dir, texts, tmp_path):
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    expect = lambda ds: [[tok.bos_token_id, *tok(t, add_special_tokens=False)["input_ids"], tok.eos_token_id] for t in ds]
    docs, val = texts[:500] + ["", "   "], texts[500:]  # two empty documents: counted, not written
    src = data_stage_folder(tmp_path / "parquet", docs, val)
    meta = tokenize_here([str(src)], tmp_path / "tok", tokenizer_dir, tasks=3)
    assert meta["dtype"] == "<u2" and meta["skipped"] == {str(src): 2}
    train_files = [docs[0::2], docs[1::2]]  # the order units are dealt in: file by file, row group by row group
    assert documents(tmp_path / "tok", meta, "train") == expect([t for f in train_files for t in f if t.strip()])
    assert documents(tmp_path / "tok", meta, "validation") == expect(val)  # its own split, written apart
    assert meta["splits"]["validation"]["bytes"] == sum(len(t.encode()) for t in val)
    assert token_shards.validation_texts(str(tmp_path / "tok"), tok, 10**9) == val  # 07_eval's held-out text

    disk = tmp_path / "disk"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": texts[:500]}),
                          "validation": datasets.Dataset.from_dict({"text": val})}).save_to_disk(str(disk))
    meta = tokenize_here([str(disk)], tmp_path / "tok_disk", tokenizer_dir, tasks=2)
    assert documents(tmp_path / "tok_disk", meta, "train") == expect(texts[:500])
    assert documents(tmp_path / "tok_disk", meta, "validation") == expect(val)


def test_uint32_when_the_vocabulary_does_not_fit_uint16(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<bos>": 0, "<eos>": 1, "<unk>": 2, **{f"w{i}": i + 3 for i in range(70_000)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>",
                            unk_token="<unk>").save_pretrained(tmp_path / "big")
    (tmp_path / "docs.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in ["w69999 w1 w65600", "w5"]))
    meta = tokenize_here([str(tmp_path / "docs.jsonl")], tmp_path / "tok", tmp_path / "big", tasks=1, fraction=1e-9)
    assert meta["dtype"] == "<u4" and token_dtype(65_536) == np.dtype("<u2") and token_dtype(65_537) == np.dtype("<u4")
    assert documents(tmp_path / "tok", meta, "train") == [[0, 70002, 4, 65603, 1], [0, 8, 1]]


@pytest.fixture(scope="module")
def folder(tokenizer_dir, texts, tmp_path_factory):
    from fromscratch.data import reading

    out = tmp_path_factory.mktemp("tokens") / "a"
    size, reading.UNIT_BYTES = reading.UNIT_BYTES, 300_000  # the 1.1 MB play in 4 units, so 3 tasks write 3 shards
    try:
        meta = tokenize_here(["default:tinyshakespeare"], out, tokenizer_dir, tasks=3)
    finally:
        reading.UNIT_BYTES = size
    assert len(meta["splits"]["train"]["shards"]) == 3
    return out


def test_windows_cover_the_tokens_in_order_and_pickle_without_pages(folder, tokenizer_dir):
    data = token_shards.load([str(folder)], str(tokenizer_dir), block_size=64)
    meta = json.loads((folder / "metadata.json").read_text())
    expected = []
    for shard in meta["splits"]["train"]["shards"]:  # each shard's tokens, its last partial window dropped
        tokens = np.fromfile(folder / shard["file"], dtype=meta["dtype"])
        expected.append(tokens[: len(tokens) // 64 * 64])
    got = torch.cat([data.train[i]["input_ids"] for i in range(len(data.train))]).numpy()
    assert len(data.train) == sum(len(e) for e in expected) // 64
    np.testing.assert_array_equal(got, np.concatenate(expected))
    assert data.train[0]["input_ids"].dtype == torch.int64
    with pytest.raises(IndexError):
        data.train[len(data.train)]
    assert pickle.loads(pickle.dumps(data.train))._maps == {}
    assert data.validation_tokens == meta["splits"]["validation"]["tokens"] > 0


def test_two_ranks_get_disjoint_windows_covering_the_epoch(folder, tokenizer_dir):
    from accelerate.data_loader import prepare_data_loader

    data = token_shards.load([str(folder)], str(tokenizer_dir), block_size=64)
    seen = []
    for rank in range(2):  # what the Trainer's accelerator does with the dataloader on each of 2 processes
        dl = torch.utils.data.DataLoader(data.train, batch_size=8, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
        dl = prepare_data_loader(dl, num_processes=2, process_index=rank, put_on_device=False,
                                 use_seedable_sampler=True, even_batches=False)
        dl.set_epoch(0)
        seen.append({tuple(x.tolist()) for b in dl for x in b["input_ids"]})
    assert not seen[0] & seen[1]
    assert len(seen[0] | seen[1]) == len({tuple(data.train[i]["input_ids"].tolist()) for i in range(len(data.train))})


def test_a_tokenizer_other_than_the_shards_is_refused(folder, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "tokenizer.json").write_text((Path(json.loads((folder / "metadata.json").read_text())["tokenizer_dir"])
                                           / "tokenizer.json").read_text() + " ")
    with pytest.raises(UserError, match="tokenized with another tokenizer"):
        token_shards.load([str(folder)], str(other), block_size=64)


def test_a_truncated_shard_is_refused(folder, tokenizer_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    shard = copy / "train" / "00001.ds"
    shard.write_bytes(shard.read_bytes()[:-2])
    with pytest.raises(UserError, match="incomplete or was changed"):
        token_shards.load([str(copy)], str(tokenizer_dir), block_size=64)


def _flip(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_a_shard_damaged_in_place_is_refused_at_start(folder, tokenizer_dir, tmp_path):
    # same size, one byte changed (issue 28: a damaged token shard trained on silently)
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    _flip(copy / "train" / "00001.ds", 1001)
    with pytest.raises(UserError, match=r"00001.ds: bytes 0-\d+ differ from what make tokenize wrote"):
        token_shards.load([str(copy)], str(tokenizer_dir), block_size=64)  # 3 blocks: all sampled at start


def test_a_damaged_block_is_refused_when_first_read_and_the_others_read(tokenizer_dir, texts, tmp_path, monkeypatch):
    from fromscratch.pretraining import token_writer

    monkeypatch.setattr(token_writer, "CHECK_BLOCK", 4096)
    monkeypatch.setattr(token_shards, "START_CHECKS", 0)
    meta = tokenize_here(["default:tinyshakespeare"], tmp_path / "t", tokenizer_dir, tasks=1)
    shard = meta["splits"]["train"]["shards"][0]
    assert shard["block_bytes"] == 4096 and len(shard["blocks"]) == -(-shard["tokens"] * 2 // 4096)
    _flip(tmp_path / "t" / shard["file"], 5 * 4096 + 7)  # block 5: tokens 10240-12287, windows 160-191 of 64
    data = token_shards.load([str(tmp_path / "t")], str(tokenizer_dir), block_size=64)
    for i in list(range(160)) + list(range(192, 400)):
        data.train[i]
    with pytest.raises(UserError, match=r"bytes 20480-24576 differ"):
        data.train[170]


@settings(max_examples=100, deadline=None)
@given(pieces=st.lists(st.integers(0, 9000), max_size=12), block=st.sampled_from([1, 7, 512, 4096]))
def test_block_digests_do_not_depend_on_how_the_file_was_written(pieces, block):
    from fromscratch.pretraining import token_writer

    data = bytes(np.random.default_rng(len(pieces)).integers(0, 256, sum(pieces), dtype=np.uint8))
    saved, token_writer.CHECK_BLOCK = token_writer.CHECK_BLOCK, block
    try:
        digests, at = token_writer._BlockDigests(), 0
        for n in pieces:
            digests.update(data[at:at + n])
            at += n
        got = digests.close()
    finally:
        token_writer.CHECK_BLOCK = saved
    assert got == [token_writer.block_digest(data[a:a + block]) for a in range(0, len(data), block)]


def test_mixture_weights_and_counted_epochs(folder, tokenizer_dir, tmp_path):
    from collections import Counter

    big = tmp_path / "speeches"
    tokenize_here(["default:us_speeches"], big, tokenizer_dir, tasks=1)
    a = token_shards.load([str(big)], str(tokenizer_dir), block_size=64)
    b = token_shards.load([str(folder)], str(tokenizer_dir), block_size=64)  # Shakespeare: fewer windows
    total = 2 * len(b.train) * 64  # tokens: b gets 3/4 of them (1.5 epochs), a 1/4 (a subsample of it)
    mix = token_shards.load([str(big), str(folder)], str(tokenizer_dir), block_size=64, weights=[1, 3],
                            mix_tokens=total, seed=1)
    n_a, n_b = mix.mixture[0]["windows"], mix.mixture[1]["windows"]
    assert n_a + n_b == len(mix.train) == total // 64 and n_b == round(1.5 * len(b.train)) and n_a < len(a.train)
    assert mix.mixture[1]["epochs"] == pytest.approx(1.5, abs=1e-3)
    assert mix.mixture[0]["epochs"] == pytest.approx(n_a / len(a.train), abs=1e-4)
    picks = [mix.train.index(i) for i in range(len(mix.train))]
    per_b = Counter(w for k, w in picks if k == 1)  # every window once, half of them (evenly spread) twice
    assert len(per_b) == len(b.train) and set(per_b.values()) == {1, 2}
    assert sum(c == 2 for c in per_b.values()) == n_b - len(b.train)
    per_a = Counter(w for k, w in picks if k == 0)
    assert set(per_a.values()) == {1} and len(per_a) == n_a  # a subsampled: no window twice
    torch.testing.assert_close(mix.train[len(mix.train) - 1]["input_ids"], b.train[picks[-1][1]]["input_ids"])
    assert mix.validation_tokens == a.validation_tokens + b.validation_tokens
    with pytest.raises(UserError, match="weights: 1 values for 2 sources"):
        token_shards.load([str(folder), str(big)], str(tokenizer_dir), block_size=64, weights=[1])


def test_fingerprint_mismatch_is_refused_in_one_line(tmp_path):
    class Args:
        seed, data_seed, world_size, per_device_train_batch_size, gradient_accumulation_steps = 0, None, 1, 8, 1

    fp = data_order.fingerprint(Args, [{"source": "x", "shards": [["train/00000.ds", 10, "ab"]]}], 64)
    ckpt = tmp_path / "checkpoint-8"
    data_order._write(ckpt, fp)
    data_order.check(ckpt, fp)  # the same: accepted
    Args.world_size = 2
    with pytest.raises(UserError, match=r"another data order \(world_size 1 -> 2\)"):
        data_order.check(ckpt, data_order.fingerprint(Args, fp["data"], 64))
    with pytest.raises(UserError, match=r"data \(other shards"):
        data_order.check(ckpt, {**fp, "data": [{"source": "y"}]})
    (ckpt / data_order.FILE).unlink()  # cut before on_save: the run folder's copy is used
    data_order._write(tmp_path, fp)
    with pytest.raises(UserError, match="block_size 64 -> 128"):
        data_order.check(ckpt, {**fp, "block_size": 128})
    assert not (ckpt / data_order.FILE).exists()  # a refused resume leaves the checkpoint as it was
    data_order.check(ckpt, fp)  # accepted on the run's copy: the checkpoint now names its own data order
    assert json.loads((ckpt / data_order.FILE).read_text()) == json.loads(json.dumps(fp))


def test_streaming_a_local_parquet_folder_gives_disjoint_ranks(tokenizer_dir, texts, tmp_path):
    from collections import Counter

    from fromscratch.pretraining.token_writer import held_out

    src = data_stage_folder(tmp_path / "parquet", texts[:500], texts[500:])  # train: 2 files, docs[k::2]
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    ranks = []
    for rank in range(2):  # the recipe's code path (streaming=True), as each of 2 DDP ranks runs it
        train, val, val_tokens, val_bytes = streaming.load(str(src), tok, 32, "text", rank=rank, world_size=2,
                                                           seed=0, validation_fraction=0.1, validation_documents=20)
        ranks.append([tuple(r["input_ids"]) for r in train])
        assert len(val) > 0 and val_bytes > val_tokens > 0
        assert all(len(w) == 32 for w in ranks[rank])
        mine = [t for t in texts[:500][rank::2] if not held_out(t, 0.1)]  # its own file, held-out texts skipped
        tokens = Counter(x for t in mine for x in [tok.bos_token_id, *tok(t, add_special_tokens=False)["input_ids"],
                                                    tok.eos_token_id])
        got = Counter(x for w in ranks[rank] for x in w)
        assert not got - tokens  # nothing from the other rank's file
        assert sum(tokens.values()) - sum(got.values()) < 32  # all but the partial last window
    assert not set(ranks[0]) & set(ranks[1])
