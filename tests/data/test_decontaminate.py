"""Decontamination: planted eval items are found in training text and attributed to their task."""

import bz2
import json
import shutil
from pathlib import Path

import pytest

from fromscratch.config import UserError
from fromscratch.data.decontaminate import DecontaminationArguments, Decontaminator, item_text
from fromscratch.sources import load_documents

EVAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "eval-tasks"
pytestmark = pytest.mark.skipif(not EVAL.exists(), reason="needs ../shared/data/eval-tasks")


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory):
    """Three real eval sets (one per row format) plus HellaSwag's text format and one malformed row."""
    d = tmp_path_factory.mktemp("evals")
    for name in ("boolq.jsonl", "lambada_openai.jsonl", "winogrande.jsonl", "gsm8k.jsonl"):
        shutil.copy(EVAL / name, d / name)
    with open(d / "copa.jsonl", "w") as fh:
        fh.write((EVAL / "copa.jsonl").read_text() + "{not json\n")
    lines = bz2.decompress((EVAL / "hellaswag" / "hellaswag_val_full.txt.bz2").read_bytes()).decode().splitlines()
    (d / "hellaswag_val_full.txt.bz2").write_bytes(bz2.compress("\n".join(lines[:600]).encode()))
    return d


@pytest.fixture(scope="module")
def decon(eval_dir):
    return Decontaminator(DecontaminationArguments([str(eval_dir)], ngram_size=13))


def _row(path: Path, i: int) -> dict:
    return json.loads(path.read_text().splitlines()[i])


def test_planted_items_are_found(eval_dir, decon):
    plays, _ = load_documents("default:tinyshakespeare")
    clean = [p for p in plays if len(p.split()) > 30][:200]
    boolq = item_text(_row(eval_dir / "boolq.jsonl", 3)).split()
    lambada = _row(eval_dir / "lambada_openai.jsonl", 10)
    gsm = item_text(_row(eval_dir / "gsm8k.jsonl", 5)).split()
    planted = [
        clean[0] + " " + " ".join(boolq[20:33]) + " " + clean[1],  # exactly 13 words of a passage
        clean[2] + "\n" + lambada["context"][-400:].upper() + " " + lambada["continuation"],  # case changed
        "Solution notes. " + " ".join(gsm[:40]),
    ]
    near_miss = clean[3] + " " + " ".join(boolq[20:32]) + " " + clean[4]  # 12 words: below n
    hits = decon.hits(clean + planted + [near_miss])
    assert all(h == [] for h in hits[:len(clean)])
    assert hits[len(clean):] == [["boolq"], ["lambada_openai"], ["gsm8k"], []]


def test_every_format_is_read(decon):
    assert {"boolq", "lambada_openai", "winogrande", "gsm8k", "copa", "hellaswag"} <= set(decon.tasks)
    assert decon.items["hellaswag"] == 100 and decon.items["copa"] == 100
    assert sum(decon.skipped.values()) == 1 and "copa.jsonl:101" in decon.skipped  # the malformed row, located
    assert decon.too_short["copa"] > 0  # COPA items are short: reported as not checkable at n = 13


def test_short_items_are_checked_with_gpt3_n(tmp_path):
    """PIQA's items are short: GPT-3's rule gives it n = 8, so a 10-word item planted in a document is found."""
    shutil.copy(EVAL / "piqa.jsonl", tmp_path / "piqa.jsonl")
    decon = Decontaminator(DecontaminationArguments([str(tmp_path)], ngram_size=13))
    assert decon.n_per_task["piqa"] == 8
    rows = [_row(tmp_path / "piqa.jsonl", i) for i in range(200)]
    short = next(item_text(r) for r in rows if 9 <= len(item_text(r).split()) <= 11)
    assert decon.hits(["It was late. " + short + " Then we went home.", "It was late. Then we went home."]) == [
        ["piqa"], []]
    assert decon.too_short["piqa"] < decon.items["piqa"] // 10


def test_hub_eval_sets_by_id(monkeypatch):
    """`hub:org/name:config@split` loads the benchmark with datasets (served locally here) and takes prompt +
    gold answer from its published schema."""
    import datasets

    rows = {"goal": ["How do you open a stuck jar lid without any tools at all?"] * 2,
            "sol1": ["Run the lid under hot water for a minute, then twist.", "Hit it."],
            "sol2": ["Put it in the freezer.", "Run the lid under hot water for a minute, then twist it."],
            "label": [0, 1]}
    calls = []

    def fake(repo, config=None):
        calls.append((repo, config))
        return datasets.DatasetDict({"validation": datasets.Dataset.from_dict(rows)})

    monkeypatch.setattr(datasets, "load_dataset", fake)
    decon = Decontaminator(DecontaminationArguments(["hub:baber/piqa@validation"], ngram_size=13))
    assert calls == [("baber/piqa", None)] and decon.tasks == ["piqa"] and decon.items == {"piqa": 2}
    text = "Kitchen tips. How do you open a stuck jar lid without any tools at all? Run the lid under hot water."
    assert decon.hits([text, "Kitchen tips. Put it in the freezer."]) == [["piqa"], []]


def test_winogrande_gold_option(eval_dir, decon):
    row = _row(eval_dir / "winogrande.jsonl", 0)
    text = row["context_options"][row["gold"]] + " " + row["continuation"]
    assert len(text.split()) >= 13 and decon.hits(["Once upon a time. " + text + " The end."]) == [["winogrande"]]


def test_missing_path_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        Decontaminator(DecontaminationArguments([str(tmp_path / "nope")]))


def test_default_means_the_shipped_eval_items():
    from fromscratch.data.decontaminate import eval_files

    names = {f.name for f in eval_files(["default"])}
    assert {"arc_easy.jsonl", "boolq.jsonl", "hellaswag.jsonl"} <= names
