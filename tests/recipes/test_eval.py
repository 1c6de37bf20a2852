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
