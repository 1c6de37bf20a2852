"""fs_gsm8k_cot / fs_gsm8k_cot_zeroshot: lm-eval's own generate_until pipeline (regex filters, exact match) on
the shipped subset, driven by a fake model whose outputs are written by hand, so every score is known in advance."""

from __future__ import annotations

import json
import re

import pytest
from lm_eval import simple_evaluate
from lm_eval.api.model import LM
from lm_eval.tasks import TaskManager

from conftest import SHARED_DATA
from fromscratch.alignment.flan import normalize
from fromscratch.evaluation import tasks

SUBSET = tasks.TASK_DIR / "data" / "gsm8k.jsonl"
ROWS = [normalize(json.loads(line)) for line in SUBSET.read_text().splitlines()]
# Hand-written outputs for five problems of the shipped subset, and what each filter should make of them.
# question prefix -> (output, strict-match correct, flexible-extract correct)
HAND = {
    "John is raising money": ("He needs 100 more. The answer is 100.", 1, 1),  # gold 100
    "Claire earns 1 girl": ("So 30 months. The answer is 31.", 0, 0),  # gold 30: wrong number stated
    "Boris owns a chocolate": ("He makes 14,000 bars. The answer is 14,000.", 1, 1),  # gold "14,000"
    "After tracking his workout": ("He can lift 36 pounds now.", 0, 1),  # gold 36: no phrase, last number 36
    "Rory is retrieving": ("In the first set he got 10 balls, so 10", 0, 1),  # gold 10: no phrase, last number 10
}


class HandModel(LM):
    """Answers generate_until requests from HAND (anything else: 'I do not know.'); records the prompts."""

    def __init__(self):
        super().__init__()
        self.prompts = []

    def generate_until(self, requests):
        out = []
        for req in requests:
            context = req.args[0]
            self.prompts.append(context)
            last_question = context.rsplit("Q: ", 1)[-1]
            out.append(next((text for prefix, (text, _, _) in HAND.items() if last_question.startswith(prefix)),
                            "I do not know."))
        return out

    def loglikelihood(self, requests):
        raise NotImplementedError

    def loglikelihood_rolling(self, requests):
        raise NotImplementedError


def run(task: str, model: LM) -> dict:
    manager = TaskManager(include_path=str(tasks.TASK_DIR), include_defaults=False, metadata={"suite": "tiny"})
    return simple_evaluate(model=model, tasks=[task], task_manager=manager, log_samples=True, bootstrap_iters=0)


def test_hand_written_outputs_score_as_checked_by_hand():
    model = HandModel()
    res = run("fs_gsm8k_cot_zeroshot", model)
    row = res["results"]["fs_gsm8k_cot_zeroshot"]
    n = len(ROWS)
    assert n == 40 and res["n-samples"]["fs_gsm8k_cot_zeroshot"]["effective"] == n
    assert row["exact_match,strict-match"] == pytest.approx(2 / n)  # John (100), Boris (14,000 = 14000)
    assert row["exact_match,flexible-extract"] == pytest.approx(4 / n)  # + Josh (36), Rory (10)
    per_item = [(s["doc"]["question"][:30], s["filter"], s["filtered_resps"], s["exact_match"])
                for s in res["samples"]["fs_gsm8k_cot_zeroshot"] if s["doc"]["question"].startswith(tuple(HAND))]
    strict = {s["doc"]["question"]: s["exact_match"] for s in res["samples"]["fs_gsm8k_cot_zeroshot"]
              if s["filter"] == "strict-match"}
    flexible = {s["doc"]["question"]: s["exact_match"] for s in res["samples"]["fs_gsm8k_cot_zeroshot"]
                if s["filter"] == "flexible-extract"}
    for prefix, (_, want_strict, want_flexible) in HAND.items():
        q = next(q for q in strict if q.startswith(prefix))
        assert (strict[q], flexible[q]) == (want_strict, want_flexible), (prefix, per_item)
    assert all(p.endswith("A: Let's think step by step.") for p in model.prompts)  # zero-shot CoT cue, no shots


def test_eight_shot_prompt_holds_the_fixed_exemplars_and_no_test_item():
    model = HandModel()
    res = run("fs_gsm8k_cot", model)
    assert res["results"]["fs_gsm8k_cot"]["exact_match,strict-match"] == pytest.approx(2 / len(ROWS))
    test_questions = {r["question"] for r in ROWS}
    for prompt in model.prompts:
        questions = [q.split("\nA:")[0] for q in re.split(r"(?:^|\n\n)Q: ", prompt) if q]
        assert len(questions) == 9  # 8 exemplars + the problem
        assert questions[0].startswith("There are 15 trees in the grove")  # Wei et al.'s first exemplar
        assert not test_questions & set(questions[:8])  # never a test item as a shot
        assert prompt.count("The answer is") == 8  # every shot shows the answer format the strict filter reads


def test_shipped_subset_is_a_sample_of_the_test_split():
    full = SHARED_DATA / "eval-tasks" / "gsm8k.jsonl"
    if not full.is_file():
        pytest.skip("../shared/data/eval-tasks/gsm8k.jsonl not present")
    test_split = {json.loads(line)["context"] for line in full.read_text().splitlines() if line.strip()}
    assert {r["question"] for r in ROWS} <= test_split


def test_full_suite_reads_data_dir_in_either_layout_else_the_hub(tmp_path):
    from fromscratch.eval_tasks import loaders

    kwargs = {"reader": "gsm8k", "tiny": "gsm8k.jsonl", "full": "eval-tasks/gsm8k.jsonl", "hub": "openai/gsm8k:main"}
    (tmp_path / "eval-tasks").mkdir()
    hub_layout = [{"question": r["question"], "answer": f"{r['rationale']}\n#### {r['answer']}"} for r in ROWS[:3]]
    (tmp_path / "eval-tasks" / "gsm8k.jsonl").write_text("\n".join(json.dumps(r) for r in hub_layout) + "\n")
    got = loaders.load(**kwargs, suite="full", data_dir=str(tmp_path))["test"]
    assert got.to_list() == ROWS[:3]  # the Hub layout reads as the shipped llm-foundry one
    with pytest.raises(Exception, match="openai/gsm8k"):  # no file: the Hub's test split (offline here: fails)
        loaders.load(**kwargs, suite="full", data_dir=str(tmp_path / "empty"))
