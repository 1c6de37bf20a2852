import json

import pytest
from huggingface_hub import ModelCard
from transformers import AutoTokenizer

from conftest import error_line, run_recipe

SAMPLES = [
    "ROMEO: But, soft! what light through yonder window breaks?",
    "  leading spaces, trailing tabs\t\t\nand\r\nwindows newlines  ",
    "Unicode: naïve café, Ελληνικά, 日本語のテキスト, emoji 🤖🚀, math ∑∞ ≠ ≈",
    "Looks special but is text: <|im_start|> is literal here? <|bos|>",
    "",
    "\x00\x01 control bytes and \u200b zero width",
]


def test_round_trip_reload_and_chat_template(tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    assert len(tok) == 1024
    for text in SAMPLES:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
    assert tok.unk_token_id is None  # byte-level: nothing is ever unknown
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|bos|>", "<|eos|>", "<|pad|>")
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there"}]
    enc = tok.apply_chat_template(chat, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    mask = enc["assistant_masks"]
    assistant = tok.decode([i for i, m in zip(enc["input_ids"], mask) if m])
    assert assistant == "Hello there<|im_end|>"  # only the assistant's tokens are marked for the loss


def test_card_and_run_info(tokenizer_dir):
    from card_rules import problems

    card = ModelCard.load(tokenizer_dir / "README.md")
    info = json.loads((tokenizer_dir / "run_info.json").read_text())
    # Measured on a held-out share of our own making: in the card text, not in the model-index.
    assert card.data.eval_results is None
    assert f"{info['metrics']['bytes_per_token']:.3f} bytes per token" in card.text
    assert 2.0 < info["metrics"]["bytes_per_token"] < 6.0  # real compression on held-out English text
    assert card.data.datasets == ["karpathy/tiny_shakespeare"] and card.data.language == ["en"]
    assert problems(tokenizer_dir) == []
    assert info["lineage"][0]["sha256"] and info["versions"]["tokenizers"]
    assert (tokenizer_dir / "config.yaml").is_file()


def test_bad_key_missing_path_and_finished_output(tmp_path, tokenizer_dir):
    bad = tmp_path / "bad.yaml"
    bad.write_text("vocab_sise: 100\n")
    line = error_line(run_recipe("02_tokenizer", "--config", str(bad), ok=False))
    assert "unknown key 'vocab_sise'" in line and str(bad) in line
    line = error_line(run_recipe("02_tokenizer", "--sources", "data/nowhere.jsonl", ok=False))
    assert "data path not found: data/nowhere.jsonl" in line
    line = error_line(run_recipe("02_tokenizer", "--output_dir", str(tokenizer_dir), ok=False))
    assert "already holds a finished run" in line


def test_reproduce_reruns_the_exact_config(tokenizer_dir, tmp_path):
    import shutil
    import subprocess
    import sys

    from conftest import ROOT, recipe_env

    run = tmp_path / "tok"
    shutil.copytree(tokenizer_dir, run)
    proc = subprocess.run([sys.executable, "-m", "fromscratch.reproduce", str(run)], cwd=ROOT, env=recipe_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = tmp_path / "tok-reproduced"
    assert (again / "tokenizer.json").read_bytes() == (tokenizer_dir / "tokenizer.json").read_bytes()
    assert "bytes_per_token" in proc.stdout


@pytest.mark.slow
def test_streamed_shards_train_the_same_tokenizer_as_documents_in_memory(tmp_path):
    """The data stage's parquet shards, read batch by batch, give the very vocabulary and merges that the same
    documents give from a JSONL file read whole; the validation split is the held-out text; a sample trains on
    about its share of the documents."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fromscratch.sources import load_documents

    docs = load_documents("default:us_speeches")[0]
    paragraphs = [p for d in docs for p in d.split("\n\n") if p.strip()]
    train, validation = paragraphs[100:1600], paragraphs[:100]  # ~0.5 MB: a few seconds a run
    (tmp_path / "data" / "train").mkdir(parents=True)
    (tmp_path / "data" / "validation").mkdir()
    for k in range(3):
        part = train[k::3]
        pq.write_table(pa.table({"text": part, "source": ["s"] * len(part)}),
                       tmp_path / "data" / "train" / f"part-{k}.parquet", row_group_size=200)
    pq.write_table(pa.table({"text": validation, "source": ["s"] * 100}),
                   tmp_path / "data" / "validation" / "p.parquet")
    ordered = [d for k in range(3) for d in train[k::3]]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in ordered))

    common = ["--config", "recipes/02_tokenizer/config_tiny.yaml", "--vocab_size", "1024"]
    run_recipe("02_tokenizer", *common, "--sources", str(tmp_path / "data"), "--output_dir", str(tmp_path / "a"))
    run_recipe("02_tokenizer", *common, "--sources", str(tmp_path / "train.jsonl"), "--heldout_fraction", "0",
               "--output_dir", str(tmp_path / "b"))
    model_a = json.loads((tmp_path / "a" / "tokenizer.json").read_text())["model"]
    model_b = json.loads((tmp_path / "b" / "tokenizer.json").read_text())["model"]
    assert model_a["vocab"] == model_b["vocab"] and model_a["merges"] == model_b["merges"]
    info = json.loads((tmp_path / "a" / "run_info.json").read_text())
    assert info["metrics"]["train_bytes"] == sum(len(d.encode()) for d in train)
    assert [x["spec"] for x in info["lineage"]] == [str(tmp_path / "data"), f"{tmp_path / 'data'}[validation]"]
    card = ModelCard.load(tmp_path / "a" / "README.md")
    assert f"{info['metrics']['bytes_per_token']:.3f} bytes per token" in card.text  # not in the model-index

    run_recipe("02_tokenizer", *common, "--sources", str(tmp_path / "data"), "--train_sample_rate", "0.5",
               "--output_dir", str(tmp_path / "half"))
    half = json.loads((tmp_path / "half" / "run_info.json").read_text())["metrics"]
    assert 0.4 < half["train_bytes"] / info["metrics"]["train_bytes"] < 0.6
    line = error_line(run_recipe("02_tokenizer", "--train_sample_rate", "0", ok=False))
    assert "train_sample_rate must be > 0 and <= 1, got 0" in line
