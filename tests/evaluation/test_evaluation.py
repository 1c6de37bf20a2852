"""fromscratch.evaluation: the lm-eval wiring (accuracy equals a hand computation), toxicity scoring and
metrics, CrowS-Pairs scoring on constructed pairs, model-index round trip, the comparison plot."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from huggingface_hub import ModelCard

from conftest import ROOT
from fromscratch.config import UserError
from fromscratch.evaluation import bias, report, tasks, toxicity


@pytest.fixture(scope="module")
def loaded(pretrained_dir):
    model, tokenizer = tasks.load_model(str(pretrained_dir))
    return model, tokenizer, tasks.harness(model, tokenizer, batch_size=4)


@torch.no_grad()
def loglikelihood(model, tokenizer, context: str, continuation: str) -> float:
    """Sum of log p(continuation tokens | context), tokenized the way the harness documents: encode the
    whole and the context, the continuation is the tail (so merges across the boundary are not double counted)."""
    whole = tokenizer.encode(context + continuation)
    ctx = tokenizer.encode(context) if context else [tokenizer.bos_token_id or tokenizer.eos_token_id]
    if not context:
        whole = ctx + whole
    cont = whole[len(ctx):]
    logits = model(torch.tensor([whole[:-1]])).logits[0, -len(cont):]
    return torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(cont)[:, None]).sum().item()


def test_accuracy_equals_hand_computation(loaded):
    model, tokenizer, lm = loaded
    n = 8
    res = tasks.evaluate(lm, ["fs_copa"], limit=n)
    lm_eval_acc = tasks.scores(res)["fs_copa"]["acc"]
    samples = res["samples"]["fs_copa"]
    assert len(samples) == n
    correct = 0
    for s in samples:
        doc = s["doc"]
        mine = [loglikelihood(model, tokenizer, doc["query"], " " + c) for c in doc["choices"]]
        theirs = [float(ll) for ll, _ in s["filtered_resps"]]
        assert mine == pytest.approx(theirs, abs=1e-3)
        correct += int(max(range(len(mine)), key=mine.__getitem__) == doc["gold"])
    assert lm_eval_acc == pytest.approx(correct / n)


def test_toxicity_ranks_toxic_above_benign():
    toxic, benign = toxicity.score(["You are a fucking stupid idiot, shut the hell up.",
                                    "The weather is lovely today, let us walk in the park."])
    assert toxic > 0.5 > benign


def test_rtp_metrics_take_the_worst_of_k_samples():
    m = toxicity.rtp_metrics([[0.1, 0.9, 0.2], [0.2, 0.3, 0.1]], threshold=0.5)
    assert m["expected_max_toxicity"] == pytest.approx((0.9 + 0.3) / 2)
    assert m["toxicity_probability"] == pytest.approx(0.5)  # one prompt of two had a toxic sample


def test_toxicity_evaluate_groups_by_domain(loaded):
    model, tokenizer, _ = loaded
    rows = [{"domain": "a", "prompt": "ROMEO:"}, {"domain": "b", "prompt": "JULIET:"}, {"domain": "b", "prompt": "The"}]
    out = toxicity.evaluate(model, tokenizer, rows, k=2, max_new_tokens=4)
    assert out["per_domain"]["a"]["prompts"] == 1 and out["per_domain"]["b"]["prompts"] == 2
    assert all(len(s["continuations"]) == 2 == len(s["toxicity"]) for s in out["samples"])


def test_crows_pairs_prefers_the_more_likely_sentence(loaded, tmp_path):
    model, tokenizer, lm = loaded
    plain, garbled = "I will not go to the king.", "Qx zvk pwq jjz lrr ttx."
    assert loglikelihood(model, tokenizer, "", plain) > loglikelihood(model, tokenizer, "", garbled)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(r) for r in [
        {"sent_more": plain, "sent_less": garbled, "stereo_antistereo": "stereo", "bias_type": "likely-first"},
        {"sent_more": garbled, "sent_less": plain, "stereo_antistereo": "stereo", "bias_type": "likely-second"},
    ]) + "\n")
    res = tasks.evaluate(lm, ["fs_crows_pairs"], crows_pairs_file=str(pairs))
    summary = bias.summary(res["samples"]["fs_crows_pairs"])
    assert summary["per_bias_type"]["likely-first"]["pct_stereotype"] == 1.0
    assert summary["per_bias_type"]["likely-second"]["pct_stereotype"] == 0.0
    assert summary["overall"] == pytest.approx({"pct_stereotype": 0.5, "pairs": 2,
                                                "likelihood_diff": summary["overall"]["likelihood_diff"]})
    assert bias.most_stereotyped(res["samples"]["fs_crows_pairs"], 1)[0]["sent_more"] == plain


def summary_fixture() -> dict:
    return {
        "benchmarks": {"0-shot": {"fs_arc_easy": {"acc": 0.3, "acc_norm": 0.25, "items": 40},
                                  "fs_lambada_openai": {"acc": 0.0, "perplexity": 1e6, "items": 40}},
                       "5-shot": {"fs_arc_easy": {"acc": 0.35, "acc_norm": 0.3, "items": 40}}},
        "perplexity": {"fs_wikitext": {"bits_per_byte": 2.5, "byte_perplexity": 5.6, "word_perplexity": 900.0,
                                       "items": 3}},
        "crows_pairs": {"overall": {"pct_stereotype": 0.55, "likelihood_diff": 1.0, "pairs": 20},
                        "per_bias_type": {"age": {"pct_stereotype": 0.6, "likelihood_diff": 1.0, "pairs": 10},
                                          "race-color": {"pct_stereotype": 0.5, "likelihood_diff": 1.0, "pairs": 10}}},
        "toxicity": {"overall": {"expected_max_toxicity": 0.2, "toxicity_probability": 0.1},
                     "per_domain": {"gender": {"expected_max_toxicity": 0.3, "toxicity_probability": 0.2}}},
    }


def test_model_card_round_trips_every_metric(pretrained_dir, tmp_path):
    from card_rules import problems

    folder = tmp_path / "model"
    shutil.copytree(pretrained_dir, folder)
    # Subsets (the tiny suite, or a limit) never enter the model-index: they would pass for benchmark scores.
    assert report.card_results(summary_fixture(), "tiny") == []
    assert report.card_results(summary_fixture(), "full", limit=10) == []
    results = report.card_results(summary_fixture(), "full")
    # first shots setting only: ARC-Easy (acc, acc_norm), LAMBADA (acc, perplexity); WikiText-2 (3); CrowS-Pairs 1 + 2
    assert len(results) == 10
    report.update_model_card(folder, results, section=report.card_section(summary_fixture(), "full"))
    report.update_model_card(folder, results, section=report.card_section(summary_fixture(), "full"))  # a rerun
    card = ModelCard.load(folder / "README.md")
    index = card.data.to_dict()["model-index"][0]["results"]
    arc = [r for r in index if r["dataset"]["type"] == "allenai/ai2_arc"]
    assert len(index) == 4 and len(arc) == 1  # one result per task, replaced (never duplicated) on a rerun
    assert arc[0]["dataset"]["config"] == "ARC-Easy" and arc[0]["dataset"]["split"] == "test"
    assert arc[0]["dataset"]["args"] == {"num_few_shot": 0}
    assert {m["type"]: m["value"] for m in arc[0]["metrics"]} == {"acc": 0.3, "acc_norm": 0.25}
    assert card.text.count("## Evaluation") == 1 and "| ARC-Easy | 5-shot | 40 | acc | 0.3500 |" in card.text
    assert problems(folder) == []


def test_comparison_plot(tmp_path):
    path = report.plot({"a": summary_fixture(), "b": summary_fixture()}, tmp_path / "c.png")
    assert path.stat().st_size > 10_000


def test_not_a_causal_lm_is_one_line(tokenizer_dir, tmp_path):
    with pytest.raises(UserError, match="no model config.json"):
        tasks.check_model(str(tokenizer_dir))
    with pytest.raises(UserError, match="no such folder"):
        tasks.check_model(str(tmp_path / "missing"))


def test_loader_resolves_suites_and_counts_malformed_rows(tmp_path):
    import importlib.util

    from fromscratch.evaluation import readers

    spec = importlib.util.spec_from_file_location("loaders", tasks.TASK_DIR / "loaders.py")
    loaders = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaders)
    tiny = loaders.load(reader="jsonl", tiny="copa.jsonl", full="eval-tasks/copa.jsonl", suite="tiny")
    assert len(tiny["test"]) == 40
    (tmp_path / "eval-tasks").mkdir()
    row = json.dumps({"query": "q", "choices": ["a", "b"], "gold": 0})
    (tmp_path / "eval-tasks" / "copa.jsonl").write_text(f"{row}\n{{broken\n{row}\n")
    full = loaders.load(reader="jsonl", tiny="copa.jsonl", full="eval-tasks/copa.jsonl", suite="full",
                        data_dir=str(tmp_path))
    assert len(full["test"]) == 2
    assert readers.SKIPPED[str(tmp_path / "eval-tasks" / "copa.jsonl")] == ["copa.jsonl:2"]


def test_hellaswag_reader_skips_items_with_a_bad_label(tmp_path):
    from fromscratch.evaluation import readers

    good = "Act: a man walks. he\n1\nsits.\nruns.\nflies.\nsings."
    (tmp_path / "h.txt").write_text(f"{good}\nAct: x\nseven\na\nb\nc\nd\n{good}\n")
    rows, skipped = readers.read_hellaswag(tmp_path / "h.txt")
    assert [r["gold"] for r in rows] == [1, 1] and skipped == ["h.txt:7"]


def test_long_evaluation_shows_progress_but_not_setup_bars(pretrained_dir, capfd):
    """The request bar (the long part) shows; lm-eval's per-task setup bars do not; no process-wide switch."""
    import os

    model, tokenizer = tasks.load_model(str(pretrained_dir))
    lm = tasks.harness(model, tokenizer, batch_size=4)
    tasks.evaluate(lm, ["fs_copa"], limit=3)
    err = capfd.readouterr().err
    assert "Running loglikelihood requests" in err
    assert "Tokenizing inputs" not in err and "it/s]" in err
    assert "TQDM_DISABLE" not in os.environ
    import lm_eval.api.model
    import tqdm

    assert lm_eval.api.model.tqdm is tqdm.tqdm  # the silencing ended with the evaluation


def test_recipes_leave_progress_bars_on():
    for recipe in ("07_eval", "10_mitigate"):
        text = (ROOT / "recipes" / recipe / "run.py").read_text()
        assert "TQDM_DISABLE" not in text, recipe
