"""Stages 03 and 04 record which documents they held out (heldout.json); 07's fs_heldout, 10's held-out perplexity
and 06's sft_heldout prompts read that record instead of re-splitting another stage's sources."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import datasets
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, error_line, run_recipe
from fromscratch import heldout
from fromscratch.config import UserError
from fromscratch.pretraining.packing import heldout_texts, load_and_pack


def _eval_recipe():
    spec = importlib.util.spec_from_file_location("recipe_07_eval_heldout", ROOT / "recipes/07_eval/run.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_pick_takes_the_recorded_documents_as_often_as_recorded():
    record = heldout.of_documents(["src"], ["b", "a"])
    assert heldout.pick(["a", "b", "c", "a"], record) == ([2, 3], [0, 1])  # the second "a" was training text
    rows = [{"messages": [{"role": "user", "content": "hi"}]}, {"messages": [{"role": "user", "content": "yo"}]}]
    assert heldout.pick(rows, heldout.of_documents(["src"], [dict(rows[1])])) == ([0], [1])
    with pytest.raises(UserError, match="1 of the 2 held-out documents are not in src any more"):
        heldout.pick(["a", "c"], record)


def test_in_memory_split_is_recorded_and_read_back_exactly(tokenizer_dir, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    docs = [f"document number {i} " + "word " * (i % 7 + 3) for i in range(60)]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    *_, val_bytes, _, record = load_and_pack([str(tmp_path / "docs.jsonl")], "text", tok, 16, 0.1, seed=3)
    assert record["kind"] == "documents" and record["documents"] == 6
    texts = heldout_texts(record, "text", tok, 10**6)
    assert len(texts) == 6 and sum(len(t.encode("utf-8")) for t in texts) == val_bytes  # what 03 validated on


def _data_stage_output(folder):
    """A data-stage output: train/ and validation/ parquet shards (whose train split a re-split would cut)."""
    for split, n in (("train", 40), ("validation", 4)):
        (folder / split).mkdir(parents=True)
        rows = [f"{split} document {i}: " + "some words of text " * 4 for i in range(n)]
        datasets.Dataset.from_dict({"text": rows, "source": ["s"] * n}).to_parquet(folder / split / "00000.parquet")


def test_fs_heldout_reads_the_data_stages_validation_split_not_training_text(tokenizer_dir, tmp_path):
    from transformers import AutoTokenizer

    data = tmp_path / "01_data"
    _data_stage_output(data)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    *_, record = load_and_pack([str(data)], "text", tok, 16, 0.05, seed=0)
    assert record == {"kind": "split", "sources": [str(data)]}
    model = tmp_path / "03_pretrain"  # what 07 reads of a stage-03 folder: stage, config, record, tokenizer
    shutil.copytree(tokenizer_dir, model)
    (model / "run_info.json").write_text(json.dumps({"stage": "03_pretrain"}))
    (model / "config.yaml").write_text(f"sources: [{data}]\nvalidation_fraction: 0.05\nseed: 0\n")
    heldout.write(model, record)
    out = _eval_recipe().pretraining_heldout(str(model), tmp_path / "heldout.jsonl", 10**6)
    texts = [json.loads(line)["text"] for line in out.read_text().splitlines()]
    assert len(texts) == 4 and all(t.startswith("validation document") for t in texts)
    (model / heldout.FILE).unlink()  # a model without a record: no held-out figure rather than a guessed one
    assert _eval_recipe().pretraining_heldout(str(model), tmp_path / "none.jsonl", 10**6) is None


def test_pretrained_model_records_what_it_held_out(pretrained_dir, tokenizer_dir, tmp_path):
    import yaml
    from transformers import AutoTokenizer

    record = heldout.read(pretrained_dir)
    assert record["kind"] == "documents" and record["sources"] == ["default:tinyshakespeare"]
    out = _eval_recipe().pretraining_heldout(str(pretrained_dir), tmp_path / "h.jsonl", 10**7)
    texts = [json.loads(line)["text"] for line in out.read_text().splitlines()]
    assert sorted(heldout.digest(t) for t in texts) == sorted(record["sha256"]) and len(texts) == record["documents"]
    config = yaml.safe_load((pretrained_dir / "config.yaml").read_text())
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    *_, again = load_and_pack(config["sources"], "text", tok, 128, config["validation_fraction"], seed=config["seed"])
    assert again == record  # the split stage 03 made, recorded as it was made


def test_sft_heldout_prompts_are_the_conversations_stage_04_held_out(sft_dir, tmp_path):
    from fromscratch.alignment.chat_data import check_sft, load_sources, to_prompts
    from fromscratch.alignment.rlhf import load_prompts

    record = heldout.read(sft_dir)
    assert record["kind"] == "documents" and record["sources"] == ["default"] and record["documents"] > 0
    prompts, _ = load_prompts(["sft_heldout"], str(sft_dir), seed=0, fraction=0.1)
    rows, _ = load_sources(record["sources"], check_sft)
    _, held = heldout.pick(rows, record)
    assert prompts["prompt"] == to_prompts(rows.select(held))["prompt"] and len(held) == record["documents"]
    bare = tmp_path / "sft"
    bare.mkdir()
    with pytest.raises(UserError, match="sft_heldout needs .*heldout.json"):
        load_prompts(["sft_heldout"], str(bare), seed=0, fraction=0.1)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 300), fraction=st.floats(0.0001, 0.9999))
def test_split_holds_out_at_least_one_row_and_trains_on_at_least_one_or_says_why(n, fraction):
    data = datasets.Dataset.from_dict({"i": list(range(n))})
    if n < 2:
        with pytest.raises(UserError, match=f"sources: {n} documents; at least 2 are needed"):
            heldout.split(data, fraction, seed=0)
        return
    parts = heldout.split(data, fraction, seed=0)
    train, test = list(parts["train"]["i"]), list(parts["test"]["i"])
    assert train and test and sorted(train + test) == list(range(n))
    assert len(test) == min(n - 1, max(1, round(n * fraction)))


ONE_CONVERSATION = {"messages": [{"role": "user", "content": "Name a colour."},
                                 {"role": "assistant", "content": "Blue."}]}
ONE_PAIR = {"prompt": [{"role": "user", "content": "Name a colour."}],
            "chosen": [{"role": "assistant", "content": "Blue."}],
            "rejected": [{"role": "assistant", "content": "No."}]}


@pytest.mark.slow
@pytest.mark.parametrize("stage,row,what,parent", [
    ("04_sft", ONE_CONVERSATION, "conversations", "pretrained_dir"),
    ("05_reward", ONE_PAIR, "preference pairs", "sft_dir"),
])
def test_one_row_is_one_line_naming_the_key_and_leaves_nothing(stage, row, what, parent, tmp_path, request):
    # issue 28's fifth class: one conversation gave datasets' ValueError from the split
    src = tmp_path / "one.jsonl"
    src.write_text(json.dumps(row) + "\n")
    out = tmp_path / "out"
    proc = run_recipe(stage, "--config", f"recipes/{stage}/config_tiny.yaml", "--model_dir",
                      str(request.getfixturevalue(parent)), "--sources", str(src), "--output_dir", str(out), ok=False)
    assert proc.returncode == 2
    assert error_line(proc) == (f"error: sources: 1 {what}; at least 2 are needed: one to train on and one held "
                                f"out (validation_fraction {0.05 if stage == '04_sft' else 0.1:g})")
    assert not out.exists() and not Path(str(out) + ".tmp").exists()
