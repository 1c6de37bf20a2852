"""recipes/07_eval end to end on the session's tiny pretrained model (a few items per task), and its
one-line errors for models that are missing or not causal LMs."""

from __future__ import annotations

import json
import shutil

import pytest
from huggingface_hub import ModelCard

from conftest import error_line, run_recipe

pytestmark = pytest.mark.slow
CONFIG = "recipes/07_eval/config_tiny.yaml"


def test_eval_writes_results_plot_and_both_cards(pretrained_dir, tmp_path):
    model = tmp_path / "03_pretrain"
    shutil.copytree(pretrained_dir, model)  # the recipe writes into the model's card: keep the fixture clean
    out = tmp_path / "07_eval"
    proc = run_recipe("07_eval", "--config", CONFIG, "--models", str(model), "--output_dir", str(out), "--limit", "3",
               "--benchmarks", "fs_arc_easy", "fs_copa", "--num_fewshot", "0", "1", "--heldout_max_bytes", "3000",
               "--toxicity_prompts_per_domain", "1", "--toxicity_samples", "2", "--completions", "2",
               "--toxicity_steering", "block",
               "--completion_max_new_tokens", "8")
    assert "Running loglikelihood requests" in proc.stderr  # progress of the long part shows
    assert "Tokenizing inputs" not in proc.stderr
    results = json.loads((out / "results.json").read_text())["models"]["03_pretrain"]
    assert set(results["benchmarks"]) == {"0-shot", "1-shot"}
    assert results["benchmarks"]["1-shot"]["fs_copa"]["items"] == 3
    assert set(results["perplexity"]) == {"fs_wikitext", "fs_heldout"}  # held-out text from its pretraining config
    assert 0 < results["perplexity"]["fs_heldout"]["bits_per_byte"] < 16
    assert results["crows_pairs"]["overall"]["pairs"] == 3
    assert set(results["toxicity"]["per_domain"]) == {"gender", "political_ideology", "profession", "race",
                                                      "religious_ideology"}
    assert results["toxicity"]["steering"] == {"mode": "block", "words": "default", "penalty": None}
    assert "output steering: block" in (out / "README.md").read_text()
    assert [c["chat_template"] for c in results["completions"]] == [False, False]  # a base model: plain prompts
    assert (out / "comparison.png").stat().st_size > 10_000 and (out / "run_info.json").is_file()
    from card_rules import problems

    eval_card = ModelCard.load(out / "README.md")
    model_card = ModelCard.load(model / "README.md")
    # Tiny-suite subsets stay out of every model-index; the model's card gets them in its Evaluation section.
    assert eval_card.data.eval_results is None and model_card.data.eval_results is None
    assert "## Evaluation" in model_card.text and "| COPA | 1-shot | 3 | acc |" in model_card.text
    assert eval_card.data.library_name is None and eval_card.data.pipeline_tag is None  # a report, no weights
    assert problems(out) == [] and problems(model) == []
    assert "### Completions" in eval_card.text and "### Bias: CrowS-Pairs" in eval_card.text
    # GSM8K chain of thought, generated: each task at its own shots, both filters, in both cards.
    reasoning = results["reasoning"]
    assert {t: (r["shots"], r["items"]) for t, r in reasoning.items()} == {"fs_gsm8k_cot_zeroshot": (0, 3),
                                                                           "fs_gsm8k_cot": (8, 3)}
    assert all(0 <= r[k] <= 1 for r in reasoning.values() for k in ("exact_match", "exact_match_flexible"))
    assert "| GSM8K CoT | 0-shot | 3 | exact match |" in model_card.text
    assert "| GSM8K CoT | 8-shot | 3 | exact match |" in model_card.text
    assert "### Reasoning: GSM8K with chain of thought" in eval_card.text


def test_missing_model_fails_with_one_line(tmp_path):
    proc = run_recipe("07_eval", "--config", CONFIG, "--models", str(tmp_path / "nope"),
                      "--output_dir", str(tmp_path / "out"), ok=False)
    assert "no such folder" in error_line(proc)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.tmp").exists()


def test_non_causal_model_fails_with_one_line(tmp_path):
    folder = tmp_path / "reward"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "architectures":
                                                    ["LlamaForSequenceClassification"]}))
    proc = run_recipe("07_eval", "--config", CONFIG, "--models", str(folder), "--output_dir", str(tmp_path / "o"),
                      ok=False)
    assert "not a causal LM" in error_line(proc)


def test_probes_write_results_and_card_entries(pretrained_dir, tmp_path):
    """ETHOS from the shared data (as `make eval ARGS="--ethos_source ../shared/data/ethos"`), StereoSet and
    RealToxicityPrompts from fixtures in their Hub formats, through the recipe on the session's model."""
    import probe_fixtures as fx
    from conftest import SHARED_DATA
    from fromscratch.evaluation import ethos
    from fromscratch.evaluation.ethos import LABEL_QUESTIONS

    if not (SHARED_DATA / "ethos" / "Ethos_Dataset_Binary.csv").is_file():
        pytest.skip("needs ../shared/data/ethos (GPL-3.0: read from there, never shipped)")
    model = tmp_path / "03_pretrain"
    shutil.copytree(pretrained_dir, model, ignore=shutil.ignore_patterns("checkpoint-*", "runs"))
    out = tmp_path / "07_eval"
    proc = run_recipe("07_eval", "--config", CONFIG, "--models", str(model), "--output_dir", str(out),
               "--limit", "2", "--benchmarks", "fs_copa", "--perplexity", "fs_wikitext", "--crows_pairs", "false",
               "--toxicity_samples", "0", "--completions", "0",
               "--ethos_source", str(SHARED_DATA / "ethos"), "--ethos_limit", "12", "--ethos_num_fewshot", "0", "2",
               "--stereoset_source", str(fx.write_stereoset(tmp_path / "stereoset")),
               "--rtp_source", str(fx.write_rtp(tmp_path / "rtp")), "--rtp_samples", "2",
               "--rtp_random_prompts", "3", "--rtp_max_new_tokens", "6")
    s = json.loads((out / "results.json").read_text())["models"]["03_pretrain"]
    sets, _ = ethos.load(str(SHARED_DATA / "ethos"))
    positives = sum(sets["binary"][i]["label"] for i in ethos.sample(sets["binary"], 12, seed=0))
    for shots in ("0-shot", "2-shot"):
        binary = s["ethos"][shots]["binary"]
        assert binary["items"] == 12 and binary["positives"] == positives and 0 <= binary["f1"] <= 1
        assert set(s["ethos"][shots]["multilabel"]) == {*LABEL_QUESTIONS, "macro_f1"}
    assert s["stereoset"]["intrasentence"]["overall"]["items"] == 5 and "overall" in s["stereoset"]
    assert 0 <= s["stereoset"]["intersentence"]["overall"]["icat"] <= 100
    assert s["rtp"]["challenging"]["overall"]["prompts"] == 3 and s["rtp"]["random"]["overall"]["prompts"] == 3
    assert all(len(x["continuations"]) == 2 for x in s["rtp_samples"]["challenging"])
    assert "[data] stereoset: 1 malformed rows skipped (first: intrasentence:5)" in proc.stdout
    assert "[data] rtp: 1 malformed rows skipped" in proc.stdout
    text = ModelCard.load(model / "README.md").text  # a tiny run: the Evaluation section, not the model-index
    assert all(f"| {name} | probe |" in text for name in ("ethos_0-shot_f1", "stereoset_intrasentence_icat",
                                                          "rtp_challenging_expected_max_toxicity"))
    card = (out / "README.md").read_text()
    assert "### Hate-speech detection: ETHOS" in card and "### Bias: StereoSet" in card
    assert "a floor next to the paper's Perspective API figures" in card



def test_full_suite_reads_every_set_by_its_hub_id(pretrained_dir, tmp_path):
    """config_full.yaml with no local files: every benchmark, WikiText, CrowS-Pairs, GSM8K and BOLD through
    `datasets.load_dataset` of its Hub id, here pointed at a mirror laid out like the Hub repos (offline), and
    scored on the rows hub_sets maps them to; a malformed Hub row is reported, not dropped silently."""
    import benchmark_fixtures as fx
    from fromscratch.evaluation import tasks

    out = tmp_path / "07_full"
    proc = run_recipe("07_eval", "--config", "recipes/07_eval/config_full.yaml", "--models", str(pretrained_dir),
                      "--output_dir", str(out), "--data_dir", str(fx.write_mirror(tmp_path / "hub")),
                      "--num_fewshot", "0", "--dtype", "float32", "--batch_size", "8", "--bootstrap_iters", "0",
                      "--reasoning_max_new_tokens", "4", "--heldout_text", "none", "--toxicity_samples", "1",
                      "--toxicity_prompts_per_domain", "1", "--completions", "0", "--ethos_source", "none",
                      "--stereoset_source", "none", "--rtp_source", "none", "--update_model_cards", "false")
    s = json.loads((out / "results.json").read_text())["models"]["03_pretrain"]
    assert {t: r["items"] for t, r in s["benchmarks"]["0-shot"].items()} == {
        t: len(fx.EXPECTED[t]) for t in tasks.FULL_BENCHMARKS}
    assert {t: r["items"] for t, r in s["reasoning"].items()} == {"fs_gsm8k_cot_zeroshot": 2, "fs_gsm8k_cot": 2}
    assert s["perplexity"]["fs_wikitext"]["items"] == 2 and s["crows_pairs"]["overall"]["pairs"] == 1
    assert set(s["toxicity"]["per_domain"]) == {"gender", "profession"}  # one prompt per BOLD domain
    assert "[data] jannalu/crows_pairs_multilingual:english@test: 1 malformed rows skipped" in proc.stdout


def test_full_suite_offline_without_a_copy_is_one_line_naming_the_set(pretrained_dir, tmp_path):
    proc = run_recipe("07_eval", "--config", CONFIG, "--suite", "full", "--models", str(pretrained_dir),
                      "--output_dir", str(tmp_path / "out"), "--benchmarks", "fs_copa", "--toxicity_samples", "0",
                      "--completions", "0", ok=False)  # the benchmarks run first: COPA's set is the first read
    assert error_line(proc).startswith("error: benchmark set aps/super_glue: cannot load aps/super_glue (copa)")
