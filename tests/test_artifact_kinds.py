"""Each stage names the kind of artefact it reads and refuses another kind at start in one line (issue 28:
RLHF trained against an SFT model given as its reward model, a random score head, and exited 0)."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT, error_line, run_recipe
from fromscratch import artifacts
from fromscratch.config import UserError

# (recipe, script, the key, what it needs, extra args)
READERS = [
    ("04_sft", "run.py", "model_dir", "a causal LM", ["--config", "recipes/04_sft/config_tiny.yaml"]),
    ("05_reward", "run.py", "model_dir", "a causal LM", ["--config", "recipes/05_reward/config_tiny.yaml"]),
    ("06_rlhf", "run.py", "sft_dir", "a causal LM", ["--config", "recipes/06_rlhf/config_tiny.yaml"]),
    ("06_rlhf", "run.py", "reward_dir", "a reward model", ["--config", "recipes/06_rlhf/config_tiny.yaml"]),
    ("06_rlhf", "online.py", "reward_dir", "a reward model", ["--config", "recipes/06_rlhf/config_grpo_tiny.yaml"]),
    ("06_rlhf", "dpo.py", "sft_dir", "a causal LM", ["--config", "recipes/06_rlhf/config_dpo_tiny.yaml"]),
]


@pytest.fixture(scope="module")
def outputs(tokenizer_dir, pretrained_dir, sft_dir, reward_dir):
    return {"tokenizer": tokenizer_dir, "pretrain": pretrained_dir, "sft": sft_dir, "reward": reward_dir}


@pytest.mark.parametrize("recipe, script, key, need, extra", READERS, ids=[f"{r[0]}/{r[1]}:{r[2]}" for r in READERS])
def test_every_reader_checks_its_key_and_refuses_each_wrong_kind(outputs, recipe, script, key, need, extra):
    # the recipe checks this key through artifacts.check_parent (the one place), with the kind it needs...
    source = (ROOT / "recipes" / recipe / script).read_text()
    target = "reward" if need == "a reward model" else r"(pretrain|sft)"
    assert re.search(rf'check_parent\([^\n]*"{target}", [^\n]*"{key}"', source), (recipe, script, key)
    # ...which refuses every other kind of finished output in one line naming the key, the need and the kind
    make_target = "reward" if need == "a reward model" else "sft"
    for name, path in outputs.items():
        right = name != "tokenizer" and ((name == "reward") == (need == "a reward model"))
        if right:
            artifacts.check_parent(str(path), make_target, key)
            continue
        with pytest.raises(UserError) as err:
            artifacts.check_parent(str(path), make_target, key)
        message = str(err.value)
        assert message.startswith(f"{key}: ") and "\n" not in message
        if name != "tokenizer":
            assert f"{need} is needed; {path} is {artifacts.kind_of(path)}" in message


@pytest.mark.parametrize("script, key, wrong, need", [("run.py", "reward_dir", "sft", "a reward model"),
                                                      ("dpo.py", "sft_dir", "reward", "a causal LM")])
def test_rlhf_given_the_wrong_kind_stops_at_start_in_one_line(outputs, tmp_path, script, key, wrong, need):
    # the case: PPO against an SFT model as its reward model trained on a random score head, exit 0
    config = {"run.py": "config_tiny.yaml", "dpo.py": "config_dpo_tiny.yaml"}[script]
    out = tmp_path / "out"
    line = error_line(run_recipe("06_rlhf", "--config", f"recipes/06_rlhf/{config}", f"--{key}", str(outputs[wrong]),
                                 "--output_dir", str(out), ok=False, script=script))
    kind = artifacts.kind_of(outputs[wrong])
    assert line == (f"error: {key}: {need} is needed; {outputs[wrong]} is {kind} (run `make "
                    f"{'reward' if need == 'a reward model' else 'sft'}`, or point {key} at one)")
    assert not out.exists() and not artifacts.tmp_dir(out).exists()


def test_kinds_are_named_from_the_record_or_the_model_class(outputs, tmp_path):
    assert artifacts.kind_of(outputs["sft"]) == "an SFT model"
    assert artifacts.kind_of(outputs["reward"]) == "a reward model"
    assert artifacts.kind_of(outputs["tokenizer"]) == "a tokenizer"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"architectures": ["GPT2LMHeadModel"]}')
    assert artifacts.kind_of(tmp_path / "m") == "a GPT2LMHeadModel"
    with pytest.raises(UserError, match="a reward model is needed; .* is a GPT2LMHeadModel"):
        artifacts.check_parent(str(tmp_path / "m"), "reward", "reward_dir")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="config.json is not readable JSON"):
        artifacts.check_parent(str(tmp_path / "m"), "sft", "sft_dir")
    artifacts.check_parent("org/name", "reward", "reward_dir")  # a Hub id is checked when it is loaded
