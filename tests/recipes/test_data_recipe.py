"""recipes/01_data end to end on small real sources with planted problems; its output feeds stages 02 and 03."""

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import SHARED_DATA, error_line, run_recipe
from fromscratch.data.decontaminate import item_text
from fromscratch.sources import load_documents

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "eval-tasks").exists(), reason="needs ../shared/data")
CONFIG = "recipes/01_data/config_tiny.yaml"


@pytest.fixture(scope="module")
def data_run(tmp_path_factory):
    """A JSONL 'crawl' (real speech paragraphs + an HTML page, duplicates, a leaked eval item, a broken line)
    and a folder with a Latin-1 letter, mixed 3:1."""
    d = tmp_path_factory.mktemp("data01")
    speeches, _ = load_documents("default:us_speeches")
    paras = [p for s in speeches for p in s.split("\n\n") if len(p.split()) >= 80][:80]
    boolq = json.loads((SHARED_DATA / "eval-tasks" / "boolq.jsonl").read_text().splitlines()[7])
    rows = [{"text": p} for p in paras[1:-1]]  # paras[0] comes as HTML, paras[-1] with the leak
    rows.append({"text": "<html><body><p>" + paras[0].replace("the ", "the <b>", 3) + "</p><script>x()</script>"})
    rows.append({"text": paras[1].upper()})  # exact duplicate after normalization
    w = paras[2].split()
    w[len(w) // 2] = "republic"
    rows.append({"text": " ".join(w)})  # near duplicate
    rows[4]["text"] += " Well said 👍"
    rows.append({"text": paras[-1] + "\n\n" + item_text(boolq)})  # leaked eval passage
    lines = [json.dumps(r) for r in rows]
    lines.insert(5, '{"text": "broken line')  # line 6 is malformed
    (d / "crawl.jsonl").write_text("\n".join(lines) + "\n")
    (d / "letters").mkdir()
    letter = ("Dear friend, the café on the corner of the square has closed, and the señor who ran it has "
              "gone back to the coast where he was born. We miss the coffee and the talk of the evening. ") * 3
    (d / "letters" / "letter.txt").write_bytes(letter.encode("latin-1"))
    (d / "evals").mkdir()
    shutil.copy(SHARED_DATA / "eval-tasks" / "boolq.jsonl", d / "evals")
    out = d / "01_data"
    proc = run_recipe("01_data", "--config", CONFIG, "--sources", str(d / "crawl.jsonl"), str(d / "letters"),
                      "--weights", "3", "1", "--licenses", "cc-by-4.0", "public domain (test letter)",
                      "--min_words", "20", "--decontaminate_against", str(d / "evals"),
                      "--validation_fraction", "0.05", "--workers", "2", "--tasks", "2", "--batch_size", "25",
                      "--output_dir", str(out))  # two workers, several batches: the multiprocess path
    return d, out, proc


def test_counts_reconcile_and_name_every_reason(data_run):
    d, out, proc = data_run
    stats = json.loads((out / "stats.json").read_text())
    steps = {s["step"]: s for s in stats["steps"]}
    for s in stats["steps"]:  # every document of every source is kept or dropped for one reason
        for src, c in s["by_source"].items():
            assert c["in"] == c["kept"] + sum(c["dropped"].values()), (s["step"], src)
    for a, b in zip(stats["steps"], stats["steps"][1:]):
        assert b["in"] == a["kept"]
    crawl = str(d / "crawl.jsonl")
    assert steps["load"]["by_source"][crawl]["dropped"] == {"unreadable row: malformed JSON (Unterminated string "
                                                            "starting at)": 1}
    assert f"{crawl}:6" in proc.stdout  # the malformed line is located
    assert steps["dedup"]["dropped"] == {"exact duplicate": 1, "near duplicate": 1}
    assert steps["decontaminate"]["documents_hit_per_task"] == {"boolq": 1}
    assert steps["clean"]["changed"]["markup stripped"] == 1 and steps["clean"]["changed"]["emoji named"] == 1
    assert steps["load"]["lines_read_as_cp1252"] == 1 and "letter.txt" in proc.stdout


def test_output_is_a_dataset_with_card_and_mixture(data_run):
    d, out, _ = data_run
    import datasets

    # The folder as the Hub serves it once pushed: load_dataset(<repo>) infers the splits from the same files and
    # the card's metadata (a save_to_disk folder would not load this way).
    ds = datasets.load_dataset(str(out))
    assert set(ds) == {"train", "validation"} and ds["train"].column_names == ["text", "source"]
    assert len(ds["validation"]) >= 1
    assert not set(ds["validation"]["text"]) & set(ds["train"]["text"])  # held out before repeats
    train = ds["train"]["text"]
    assert not any("<" in t or "👍" in t for t in train) and any(":thumbs_up_sign:" in t for t in train)
    assert any("café" in t for t in train)  # the Latin-1 letter, decoded
    stats = json.loads((out / "stats.json").read_text())
    letters = next(m for m in stats["mixture"] if m["source"].endswith("letters"))
    assert letters["target_share"] == pytest.approx(0.25) and letters["epochs"] > 1  # up-sampled
    assert letters["actual_share"]["characters"] == pytest.approx(0.25, abs=0.05)
    card = (out / "README.md").read_text()
    assert "cc-by-4.0" in card and "public domain (test letter)" in card and "task_categories" in card
    from card_rules import dataset_problems

    assert dataset_problems(out) == []
    assert (out / "run_info.json").is_file() and not Path(str(out) + ".tmp").exists()
    docs, _ = load_documents(str(out))  # what --sources <out> reads: the train split
    assert len(docs) == len(ds["train"])


def test_tokenizer_and_pretraining_read_it(data_run, tmp_path):
    _, out, _ = data_run
    run_recipe("02_tokenizer", "--config", "recipes/02_tokenizer/config_tiny.yaml", "--sources", str(out),
               "--vocab_size", "320", "--output_dir", str(tmp_path / "tok"))
    run_recipe("03_pretrain", "--config", "recipes/03_pretrain/config_tiny.yaml", "--preset", "nano",
               "--sources", str(out), "--tokenizer_dir", str(tmp_path / "tok"), "--block_size", "64",
               "--max_steps", "3", "--eval_steps", "3", "--save_steps", "3", "--report_to", "none",
               "--disable_tqdm", "true", "--output_dir", str(tmp_path / "lm"))
    info = json.loads((tmp_path / "lm" / "run_info.json").read_text())
    assert info["lineage"][0]["spec"] == str(out)


def test_bad_settings_fail_at_start_in_one_line(tmp_path):
    proc = run_recipe("01_data", "--config", CONFIG, "--weights", "1", "--output_dir", str(tmp_path / "a"), ok=False)
    assert "weights: 1 values for 2 sources" in error_line(proc)
    proc = run_recipe("01_data", "--config", CONFIG, "--weights", "0", "0", "--output_dir", str(tmp_path / "z"),
                      ok=False)
    assert "weights: all 0: give at least one" in error_line(proc) and not (tmp_path / "z.tmp").exists()
    proc = run_recipe("01_data", "--config", "recipes/01_data/config_web.yaml", "--decontaminate_against",
                      str(tmp_path / "none"), "--output_dir", str(tmp_path / "b"), ok=False)  # web YAML accepted
    assert "decontaminate_against: path not found" in error_line(proc)
    proc = run_recipe("01_data", "--config", CONFIG, "--quality_classifier", str(tmp_path / "none"),
                      "--output_dir", str(tmp_path / "c"), ok=False)
    assert "quality_classifier: no config.json + weights.npz in" in error_line(proc)
    assert not (tmp_path / "b.tmp").exists()


def test_shipped_configs_are_valid_and_commented():
    import yaml

    keys = []
    for name in ("config_tiny.yaml", "config_web.yaml"):
        path = Path("recipes/01_data") / name
        lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
        assert all(" # " in line for line in lines), [line for line in lines if " # " not in line]
        keys.append(set(yaml.safe_load(path.read_text())))
    assert keys[0] == keys[1]  # both are parsed by the recipe in test_bad_settings_fail_at_start_in_one_line


TOXIC = ("You are a stupid idiot and a worthless moron, and everyone in this town knows that you are a pathetic "
         "loser. Shut up, you fool, and get out of here before we throw you out of the hall with the rest of the trash.")


def test_classifier_steps_and_counterfactual_augmentation_reconcile(tmp_path):
    """Toxicity filter, quality classifier and counterfactual augmentation switched on together."""
    import datasets

    speeches, _ = load_documents("default:us_speeches")
    paras = [p for s in speeches for p in s.split("\n\n") if len(p.split()) >= 80][100:140]
    def scramble(sentence):  # word order scrambled inside each sentence, which still ends in a full stop
        w = sentence.replace(".", "").replace(",", "").split()
        return " ".join(w[i] for i in sorted(range(len(w)), key=lambda i: (i * 7919) % len(w))) + "."

    salad = " ".join(scramble(s) for s in re.split(r"(?<=\.)\s+", paras[0]))  # passes the rule filters
    rows = [{"text": p} for p in paras] + [{"text": TOXIC}, {"text": salad}]
    (tmp_path / "crawl.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "out"
    run_recipe("01_data", "--config", CONFIG, "--sources", str(tmp_path / "crawl.jsonl"), "--weights", "1",
               "--licenses", "public domain", "--min_words", "20", "--decontaminate_against", str(tmp_path),
               "--toxicity_threshold", "0.9", "--quality_classifier", "default", "--quality_threshold", "0.5",
               "--counterfactual_augmentation", "add", "--validation_fraction", "0.1", "--output_dir", str(out))
    stats = json.loads((out / "stats.json").read_text())
    steps = {s["step"]: s for s in stats["steps"]}
    order = [s["step"] for s in stats["steps"]]
    assert order.index("filter") < order.index("toxicity") < order.index("quality_classifier") < order.index("dedup")
    assert order.index("hold_out") < order.index("counterfactual")
    for a, b in zip(stats["steps"], stats["steps"][1:]):  # the books: each step starts with kept + added
        assert b["in"] == a["kept"] + a.get("added", 0), b["step"]
        assert b["in"] == b["kept"] + sum(b["dropped"].values())
    assert steps["toxicity"]["dropped"] == {"toxicity >= 0.9": 1}
    q = steps["quality_classifier"]
    assert q["dropped"].get("quality score < 0.5", 0) >= 1 and q["scores"]["mean"]["kept"] > 0.5
    assert sum(q["scores"]["histogram"].values()) == q["in"]
    cda = steps["counterfactual"]
    assert steps["hold_out"]["dropped"] == {"moved to validation split": 4}
    assert cda["in"] == steps["hold_out"]["kept"] and cda["added"] == cda["documents_changed"] > 10
    assert cda["swaps"] == sum(cda["swaps_per_term"].values()) or len(cda["swaps_per_term"]) == 20
    ds = datasets.load_dataset("parquet", data_dir=str(out))
    train, val = list(ds["train"]["text"]), list(ds["validation"]["text"])
    assert TOXIC not in train + val and salad not in train + val
    assert len(set(train)) == cda["in"] + cda["added"]  # the mixer samples originals and copies (weight 1: once)
    assert any(" she " in t or " her " in t for t in set(train) - set(paras))  # a swapped copy is in train
    assert set(val) <= set(paras)  # validation stays natural text
    card = (out / "README.md").read_text()
    assert f"{cda['documents_changed']} documents gender-swapped" in card and "documents scoring >= 0.9 dropped (1)" in card
