"""A generated config keeps its template's keys and lines, and every key it sets carries the reference's comment."""

from pathlib import Path

import pytest
import yaml

from fromscratch import commented_yaml

ROOT = Path(__file__).resolve().parents[1]
STAGE03 = ROOT / "recipes/03_pretrain/config_tiny.yaml"


def key_comments(text: str) -> dict[str, str]:
    """key -> comment of every top-level key line, each of which must have one."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", " ", "-")):
            assert " # " in line, f"uncommented: {line}"
            out[line.split(":", 1)[0]] = line.split(" # ", 1)[1].strip()
    return out


def test_set_keys_take_the_reference_comment_and_the_rest_stays(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("# title of the base run\n# second title line\n# Training\nlearning_rate: 0.003   # tiny LR why\n"
                    "seed: 0 # init\nreport_to:\n  - tensorboard\nmax_steps: 4200  # 2.2B tokens / batch\n")
    reference = {"learning_rate": "peak LR", "max_steps": "the budget", "report_to": "trackers"}
    text = commented_yaml.substitute(base, {"learning_rate": 0.0123, "max_steps": 50, "report_to": "none",
                                            "warmup_steps": 0.05, "hub_model_id": "me/model: v1"},
                                     reference, ["# from a sweep"], fallback=lambda key: f"{key} as searched")
    assert yaml.safe_load(text) == {"learning_rate": 0.0123, "seed": 0, "max_steps": 50, "report_to": "none",
                                    "warmup_steps": 0.05, "hub_model_id": "me/model: v1"}
    assert key_comments(text) == {"learning_rate": "peak LR", "seed": "init", "report_to": "trackers",
                                  "max_steps": "the budget", "warmup_steps": "warmup_steps as searched",
                                  "hub_model_id": "hub_model_id as searched"}
    assert text.startswith("# from a sweep\n# Training\n") and "title" not in text


def test_a_key_the_reference_never_documented_is_refused(tmp_path):
    with pytest.raises(KeyError, match="adam_beta1"):
        commented_yaml.substitute(STAGE03, {"adam_beta1": 0.8}, {}, [])


def test_stage_03s_reference_comments_every_key_once():
    comments = commented_yaml.comments(STAGE03)
    assert comments == key_comments(STAGE03.read_text())
    assert set(comments) == set(yaml.safe_load(STAGE03.read_text()))
    # the keys the planner writes beyond a CPU run's are declared there too, at their defaults
    assert {"layers", "hidden", "heads", "kv_heads", "ffn", "max_steps", "activation_checkpointing"} <= set(comments)
