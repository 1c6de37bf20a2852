"""fromscratch.alignment.flan: GSM8K layouts normalised, the four formats rendered by their shares (counted from the rendered
text, not from the labels), exemplars from the training rows only, eval questions kept out of training."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from fromscratch.alignment import flan
from fromscratch.config import UserError

FIXTURE = Path(__file__).parents[1] / "data" / "gsm8k_format_fixture.jsonl"  # own text in openai/gsm8k's layout
ROWS = [json.loads(line) for line in FIXTURE.read_text().splitlines()]


def reasoning() -> datasets.Dataset:
    return datasets.Dataset.from_list([flan.normalize(r) for r in ROWS])


def instructions(n: int = 30) -> datasets.Dataset:
    chats = [[{"role": "user", "content": f"Name a colour number {i}."}, {"role": "assistant", "content": f"Blue {i}."}]
             for i in range(n)]
    chats.append(chats[0] + [{"role": "user", "content": "Another?"}, {"role": "assistant", "content": "Red."}])
    return datasets.Dataset.from_dict({"messages": chats})


def test_the_three_layouts_normalise_alike():
    gsm8k = {"question": "Q?", "answer": "Half of 48 is 48/2 = <<48/2=24>>24.\n#### 24"}
    foundry = {"context": "Q?", "chain_of_thought": "Half of 48 is 48/2 = <<48/2=24>>24.", "answer": "24"}
    plain = {"question": "Q?", "rationale": "Half of 48 is 48/2 = 24.", "answer": 24}
    want = {"question": "Q?", "rationale": "Half of 48 is 48/2 = 24.", "answer": "24"}  # calculator markup removed
    assert flan.normalize(gsm8k) == flan.normalize(foundry) == flan.normalize(plain) == want
    for bad in ({"question": "Q?", "answer": "24"}, {"question": "", "rationale": "r", "answer": "1"}, {"text": "x"}):
        with pytest.raises(ValueError):
            flan.normalize(bad)


def test_malformed_reasoning_rows_are_counted(tmp_path):
    path = tmp_path / "cot.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS[:5] + [{"question": "no marker", "answer": "7"}]) + "\n")
    ds, (lineage,) = flan.load_reasoning([str(path)])
    assert len(ds) == 5 and lineage.documents == 5 and sum(lineage.skipped.values()) == 1


def rendered_format(messages: list[dict], k: int) -> str:
    """The format of a rendered row, read from its text alone."""
    user, answer = messages[0]["content"], messages[-1]["content"]
    shots = sum(user.count(marker) for marker in ("Q: ", "Question: ", "Solve the problem."))  # one per question
    few = shots == k + 1
    assert shots in (1, k + 1), user
    cot = "\n" in answer  # the fixture's rationales have several lines; a direct answer is one
    return f"{'few_shot' if few else 'zero_shot'}_{'cot' if cot else 'direct'}"


def test_formats_follow_the_shares_and_are_seeded():
    ds = reasoning()
    shares = [0.1, 0.2, 0.3, 0.4]
    out, labels = flan.render_reasoning(ds, shares, k=2, seed=0)
    assert flan.counts(labels) == {"zero_shot_direct": 5, "zero_shot_cot": 10, "few_shot_direct": 14, "few_shot_cot": 19}
    seen = [rendered_format(m, 2) for m in out["messages"]]
    assert seen == labels  # the text really is in the labelled format
    for m, row in zip(out["messages"], ds):
        assert row["question"] in m[0]["content"].rsplit("\n\n", 1)[-1]  # the row's own question is asked last
        assert m[1]["content"].rstrip(".").endswith(row["answer"])
        assert row["question"] not in m[0]["content"].rsplit("\n\n", 1)[0] or not m[0]["content"].count("\n\n")
    again, labels_again = flan.render_reasoning(ds, shares, k=2, seed=0)
    assert again["messages"] == out["messages"] and labels_again == labels
    assert flan.render_reasoning(ds, shares, k=2, seed=1)[0]["messages"] != out["messages"]


def test_cot_targets_end_as_the_eval_reads_them():
    out, labels = flan.render_reasoning(reasoning(), [0, 1, 0, 1], k=1, seed=0)
    assert set(labels) == {"zero_shot_cot", "few_shot_cot"}
    for m, row in zip(out["messages"], reasoning()):
        assert m[1]["content"].endswith(f"The answer is {row['answer']}.")  # fs_gsm8k_cot's strict-match regex
        assert "<<" not in m[0]["content"] + m[1]["content"]


def test_instructions_get_direct_formats_only_and_dialogues_stay():
    ds = instructions()
    out, labels = flan.render_instructions(ds, [0.25, 0.25, 0.25, 0.25], k=2, seed=0)
    assert flan.counts(labels) == {"zero_shot_direct": 16, "zero_shot_cot": 0, "few_shot_direct": 15, "few_shot_cot": 0}
    assert out["messages"][-1] == ds["messages"][-1]  # the multi-turn dialogue as it was
    for m, label, original in zip(out["messages"], labels, ds["messages"]):
        assert (m[0]["content"].count("Instruction:") == 3) == (label == "few_shot_direct")
        assert m[-1] == original[-1]  # the target never changes


def test_exemplars_and_training_rows_never_come_from_held_out_or_eval_questions(tmp_path):
    eval_rows = [json.loads(line) for line in flan.SHIPPED_GSM8K_EVAL.read_text().splitlines()]
    # A fixture that (wrongly) holds two problems of the GSM8K test split: they must be dropped, and counted.
    leaked = ROWS + [{"question": r["context"], "answer": r["chain_of_thought"] + "\n#### " + r["answer"]}
                     for r in eval_rows[:2]]
    path = tmp_path / "cot.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in leaked) + "\n")
    built = flan.build_mixture(instructions(), instructions(4), [str(path)], [0.25] * 4, k=3,
                               validation_fraction=0.2, seed=0, eval_files=[flan.SHIPPED_GSM8K_EVAL])
    counts = built["counts"]
    assert counts["dropped_in_eval_sets"] == 2
    assert counts["reasoning_train"] + counts["reasoning_held_out"] == len(ROWS)
    assert sum(counts["reasoning"].values()) == counts["reasoning_train"]
    assert sum(counts["all"].values()) == len(built["train"])
    train_text = "\n".join(m["content"] for chat in built["train"]["messages"] for m in chat)
    held_out = [m[0]["content"].split("\n")[0].removeprefix("Q: ") for m in built["cot_eval"]["messages"]]
    assert len(held_out) == counts["reasoning_held_out"] >= 9
    for question in held_out:  # neither as a training row nor as an exemplar
        assert question not in train_text
    for r in eval_rows:
        assert r["context"] not in train_text
    assert all(rendered_format(m, 3) == "zero_shot_cot" for m in built["cot_eval"]["messages"])


def test_the_gsm8k_test_split_as_a_reasoning_source_stops_the_run(tmp_path):
    # The test split itself (../shared/data/eval-tasks/gsm8k.jsonl where present), else a stand-in holding most
    # of the shipped sample: the drop could only remove the 40 sampled problems and would train on the rest.
    from conftest import SHARED_DATA

    test_split = SHARED_DATA / "eval-tasks" / "gsm8k.jsonl"
    if not test_split.is_file():
        test_split = tmp_path / "gsm8k_test.jsonl"
        test_split.write_text("".join(flan.SHIPPED_GSM8K_EVAL.read_text().splitlines(True)[:21]))
    for sources in ([str(test_split)], [str(FIXTURE), str(test_split)]):
        with pytest.raises(UserError, match=r"cot_sources: hold (21|40) of the 40 questions of gsm8k.jsonl.*"
                                            r"evaluation only"):
            flan.build_mixture(instructions(), instructions(4), sources, [0.25] * 4, k=3,
                               validation_fraction=0.2, seed=0, eval_files=[flan.SHIPPED_GSM8K_EVAL])


def test_shares_are_checked():
    for bad in ([1, 1, 1], [0, 0, 0, 0], [1, -1, 1, 1]):
        with pytest.raises(UserError):
            flan.check_shares(bad)
    with pytest.raises(UserError):
        flan.render_reasoning(reasoning().select(range(3)), [1, 1, 1, 1], k=3)


def test_few_shot_rows_keep_only_the_exemplars_that_fit_and_are_counted_as_trained():
    # Blocks are joined by blank lines; the fixture's rationales have none: "\n\n" counts exemplars.
    at_most_one = lambda m: m[0]["content"].count("\n\n") <= 1  # noqa: E731
    out, labels = flan.render_reasoning(reasoning(), [0, 0, 1, 1], k=3, seed=0, fits=at_most_one)
    assert set(labels) == {"few_shot_direct", "few_shot_cot"}
    assert {m[0]["content"].count("\n\n") for m in out["messages"]} == {1}  # 3 asked, 1 kept
    none_fit = lambda m: m[0]["content"].count("\n\n") == 0  # noqa: E731
    out, labels = flan.render_reasoning(reasoning(), [0, 0, 1, 1], k=3, seed=0, fits=none_fit)
    assert flan.counts(labels) == {"zero_shot_direct": 24, "zero_shot_cot": 24, "few_shot_direct": 0, "few_shot_cot": 0}
    out, labels = flan.render_instructions(instructions(), [1, 0, 1, 0], k=2, seed=0, fits=none_fit)
    assert flan.counts(labels)["few_shot_direct"] == 0 and out["messages"] == instructions()["messages"]


def test_real_scale_config_names_the_gsm8k_train_split_by_hub_id():
    import yaml

    from fromscratch.alignment.chat_data import is_local

    cfg = yaml.safe_load((Path(__file__).parents[2] / "recipes/04_sft/config_1b.yaml").read_text())
    assert cfg["cot_sources"] == ["openai/gsm8k:main"] and not is_local(cfg["cot_sources"][0])
    with pytest.raises(UserError, match="openai/gsm8k"):  # offline here: one line naming it, no traceback
        flan.load_reasoning(cfg["cot_sources"])
