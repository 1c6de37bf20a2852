"""recipes/05_reward: held-out pairwise accuracy above chance, a card naming its SFT parent and its data,
malformed pairs refused before training."""

from __future__ import annotations

import json

from transformers import AutoModelForSequenceClassification

from conftest import error_line, run_recipe


def test_reward_model_ranks_held_out_pairs_above_chance(reward_dir, sft_dir):
    m = json.loads((reward_dir / "run_info.json").read_text())["metrics"]
    print(f"reward held-out accuracy {m['eval_accuracy']:.3f} on {m['eval_pairs']} pairs "
          f"(before training {m['initial_eval_accuracy']:.3f}), margin {m['eval_margin']:.4f}")
    assert m["eval_accuracy"] > 0.5, m
    assert m["eval_margin"] > 0, m
    assert m["eval_pairs"] >= 50
    card = (reward_dir / "README.md").read_text()
    assert f"base_model: {sft_dir}" in card and "default:hh_rlhf" in card
    model = AutoModelForSequenceClassification.from_pretrained(reward_dir)
    assert model.config.num_labels == 1


def test_rejected_without_chosen_fails_before_training(sft_dir, tmp_path):
    bad = tmp_path / "pairs.jsonl"
    bad.write_text(json.dumps({"prompt": "Hi", "chosen": "Hello", "rejected": "Go away"}) + "\n"
                   + json.dumps({"prompt": "Hi", "chosen": None, "rejected": "Go away"}) + "\n")
    out = tmp_path / "rm"
    proc = run_recipe("05_reward", "--config", "recipes/05_reward/config_tiny.yaml", "--model_dir", str(sft_dir),
                      "--sources", str(bad), "--output_dir", str(out), ok=False)
    line = error_line(proc)
    assert "row 2" in line and "'chosen'" in line and "rejected" in line
    assert not out.exists()
