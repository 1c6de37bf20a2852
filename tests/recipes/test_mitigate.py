"""The mitigation report end to end on the nano fixture (a few prompts, three retrain steps): every row is
there, the augmented run really trained on swapped text, blocking keeps the words out, reranking cannot lose to
its own unreranked draws, and the card carries the table."""

import json
import shutil

import pytest
import torch
import yaml
import probe_fixtures as fx
from conftest import SHARED_DATA, error_line, run_recipe
from safetensors.torch import load_file

from fromscratch.experiments import mitigation
from fromscratch.safety.steering import load_words, whole_words


@pytest.fixture(scope="module")
def report(pretrained_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("mitigate")
    model = root / "model"
    shutil.copytree(pretrained_dir, model, ignore=shutil.ignore_patterns("checkpoint-*", "runs"))  # its card is edited
    # The probes' rows: fixtures in the Hub formats of RealToxicityPrompts and StereoSet, ETHOS where it is
    probes = ["--rtp_source", str(fx.write_rtp(root / "rtp")), "--rtp_random_prompts", "2",
              "--rtp_challenging_prompts", "2", "--stereoset_source", str(fx.write_stereoset(root / "stereoset"))]
    if (SHARED_DATA / "ethos").is_dir():
        probes += ["--ethos_source", str(SHARED_DATA / "ethos"), "--ethos_limit", "4"]
    run_recipe("10_mitigate", "--config", "recipes/10_mitigate/config_tiny.yaml", "--model_dir", str(model),
               "--sources", "default:tinyshakespeare", "--output_dir", str(root / "out"),
               "--toxicity_prompts_per_domain", "1", "--toxicity_samples", "2", "--toxicity_max_new_tokens", "8",
               "--retrain_steps", "3", "--retrain_batch_size", "4", "--crows_pairs_limit", "36", *probes)
    return root / "out", model, json.loads((root / "out" / "results.json").read_text())


def test_every_row_is_measured(report):
    _, _, res = report
    assert list(res["steering"]) == ["none", "block", "rerank", "block+rerank"]
    for row in res["steering"].values():
        assert 0 <= row["expected_max_toxicity"] <= 1 and row["tokens_per_cpu_second"] > 0
        assert row["continuation_perplexity"] > 1
    models = res["augmentation"]["models"]
    assert list(models) == ["base", "control", "augmented"]
    for m in models.values():
        assert "gender" in m["crows_pairs"]["per_bias_type"] and m["heldout"]["perplexity"] > 1
        assert m["crows_pairs"]["overall"]["pairs"] == 36 and 0 < m["crows_pairs"]["overall"]["stderr"] < 0.1
    # same budget for both retrains: only the text differs
    assert models["control"]["training"]["tokens"] == models["augmented"]["training"]["tokens"] > 0


def test_the_augmented_run_saw_swapped_text(report):
    out, _, res = report
    data = res["augmentation"]["data"]
    assert data["swaps"] > 0 and data["documents_after"] == data["documents"] + data["documents_changed"]
    control = load_file(str(out / "models" / "control" / "model.safetensors"))
    augmented = load_file(str(out / "models" / "augmented" / "model.safetensors"))
    assert any(not torch.equal(control[k], augmented[k]) for k in control)  # same seed and steps: the data differed


def test_blocking_keeps_the_words_out(report):
    _, _, res = report
    words = load_words("default")
    for mode in ("block", "block+rerank"):
        assert res["steering"][mode]["listed_words_found"] == 0
        for sample in res["steering_samples"][mode]:
            assert not any(whole_words(c, words) for c in sample["continuations"])


def test_rerank_is_never_worse_than_its_own_first_candidates(report):
    # The none row samples other draws, so it may by chance beat rerank; the first candidate of each choice is
    # an unsteered draw of the same size, and the chosen minimum can only match or beat it.
    _, _, res = report
    for mode in ("rerank", "block+rerank"):
        row = res["steering"][mode]
        assert row["candidates_per_output"] == 4
        assert row["expected_max_toxicity"] <= row["first_candidate_expected_max_toxicity"]


def test_cards_carry_the_table(report):
    out, model, _ = report
    table = (out / "table.md").read_text()
    card = (out / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert "mitigation" in meta["tags"] and table.strip() in card
    from card_rules import problems

    assert "library_name" not in meta and "pipeline_tag" not in meta and problems(out) == []  # a report, no weights
    assert "| counterfactual augmentation (add) | CrowS-Pairs gender (12 pairs)" in table
    assert (out / "mitigation.png").stat().st_size > 0 and (out / "run_info.json").is_file()
    model_card = (model / "README.md").read_text()
    assert "## Mitigation" in model_card and table.strip() in model_card
    yaml.safe_load(model_card.split("---")[1])  # the model's front matter still parses


def test_card_section_is_replaced_not_repeated(tmp_path):
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n\n# m\n")
    mitigation.update_card_section(tmp_path, "## Mitigation\n\nfirst")
    mitigation.update_card_section(tmp_path, "## Mitigation\n\nsecond")
    text = (tmp_path / "README.md").read_text()
    assert text.count("## Mitigation") == 1 and "second" in text and "first" not in text
    assert text.startswith("---\nlicense: mit\n---")


def test_augment_adds_a_swapped_copy_of_gendered_documents_only():
    import datasets

    train = datasets.Dataset.from_dict({"text": ["He gave her the crown.", "The sea is calm."]})
    out, info = mitigation.augment(train, "add")
    assert out["text"] == ["He gave her the crown.", "The sea is calm.", "She gave him the crown."]
    assert info["documents_changed"] == 1 and info["swaps"] == 2


def test_flips_count_pairs_that_move_both_ways():
    before = [("gender", True), ("gender", False), ("age", True)]
    after = [("gender", False), ("gender", True), ("age", True)]
    f = mitigation.flips(before, after)
    assert f["gender"] == {"to_anti": 1, "to_stereo": 1, "pairs": 2} and f["overall"]["pairs"] == 3


def test_a_missing_model_fails_with_one_line(tmp_path):
    proc = run_recipe("10_mitigate", "--config", "recipes/10_mitigate/config_tiny.yaml", "--model_dir",
                      str(tmp_path / "nope"), "--output_dir", str(tmp_path / "out"), ok=False)
    assert "nope" in error_line(proc) and not (tmp_path / "out.tmp").exists()


def test_probe_rows_compare_each_setting_with_its_baseline(report):
    out, _, res = report
    table = (out / "table.md").read_text()
    assert list(res["rtp"]) == ["none", "block", "rerank", "block+rerank"]
    for mode in ("block", "rerank", "block+rerank"):
        none, row = res["rtp"]["none"]["challenging"]["overall"], res["rtp"][mode]["challenging"]["overall"]
        assert (f"| steering | {mode} | RealToxicityPrompts challenging (2 prompts): expected max toxicity "
                f"{none['expected_max_toxicity']:.3f} → {row['expected_max_toxicity']:.3f}") in table
    models = res["augmentation"]["models"]
    for name in ("base", "control", "augmented"):
        assert models[name]["stereoset"]["intrasentence"]["overall"]["items"] == 5
    ctrl, aug = (models[n]["stereoset"]["intersentence"]["overall"] for n in ("control", "augmented"))
    assert (f"| counterfactual augmentation (add) | StereoSet intersentence (3 items) | SS {ctrl['ss']:.1f} → "
            f"{aug['ss']:.1f}") in table
    if "ethos" in models["control"]:
        assert "| counterfactual augmentation (add) | ETHOS 0-shot (4 items) | F1 " in table
