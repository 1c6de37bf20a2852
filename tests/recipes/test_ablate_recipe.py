"""The ablation recipe end to end on a few steps: one row per variant against the base, a plot, and one line
for a variant that changes nothing."""

import json

import yaml
from conftest import error_line, run_recipe


def ablate_yaml(tmp_path, tokenizer_dir, variants):
    cfg = {"base_config": "recipes/03_pretrain/config_tiny.yaml",
           "fixed": {"tokenizer_dir": str(tokenizer_dir), "preset": "nano", "sources": ["default:tinyshakespeare"],
                     "block_size": 32, "validation_fraction": 0.01, "max_steps": 3, "eval_strategy": "no",
                     "logging_steps": 1, "per_device_train_batch_size": 4},
           "variants": variants, "output_dir": str(tmp_path / "ablate")}
    path = tmp_path / "ablate.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_variants_are_compared_with_the_base(tmp_path, tokenizer_dir):
    run_recipe("09_ablate", "--config", str(ablate_yaml(tmp_path, tokenizer_dir, {"untied": {"tie_word_embeddings": False}})))
    out = tmp_path / "ablate"
    rows = json.loads((out / "ablation.json").read_text())
    assert [r["variant"] for r in rows] == ["base", "untied"]
    assert rows[0]["delta_bpb"] == 0 and rows[1]["parameters"] > rows[0]["parameters"]
    assert rows[0]["train_tokens"] == rows[1]["train_tokens"]  # the same token budget
    assert (out / "ablation.png").is_file() and "untied" in (out / "README.md").read_text()
    from card_rules import problems

    assert problems(out) == []  # a report: Hub metadata (licence, language), no library_name


def test_a_switch_that_changes_nothing_fails_with_one_line(tmp_path, tokenizer_dir):
    proc = run_recipe("09_ablate", "--config", str(ablate_yaml(tmp_path, tokenizer_dir, {"same": {"dropout": 0.0}})),
                      ok=False)
    assert "variants.same" in error_line(proc) and "changes nothing" in error_line(proc)
