"""recipes/06_rlhf: PPO (run.py) raises the reward model's score of the policy's own answers while the KL to the
SFT model stays bounded; GRPO and RLOO (online.py) and DPO (dpo.py) run; every card names its parents; a YAML
given to the wrong script names the right one."""

from __future__ import annotations

import json
import re

import pytest
from transformers import AutoModelForCausalLM

from conftest import TINY_RUN, error_line, run_recipe

KL_BOUND = 5.0  # nats per answer: far above what a kl_coef-penalised policy drifts in a short run


# Each shipped YAML and the script that runs it.
SCRIPT_OF = {"config_tiny.yaml": "run.py", "config_1b.yaml": "run.py", "config_grpo_tiny.yaml": "online.py",
             "config_rloo_tiny.yaml": "online.py", "config_dpo_tiny.yaml": "dpo.py"}


def _run(config: str, sft_dir, reward_dir, out, *args):
    parents = ("--sft_dir", str(sft_dir)) + (("--reward_dir", str(reward_dir)) if reward_dir else ())
    return run_recipe("06_rlhf", "--config", f"recipes/06_rlhf/{config}", *parents, "--output_dir", str(out),
                      *TINY_RUN, *args, script=SCRIPT_OF[config])


def _card_parents(out, sft_dir):
    from huggingface_hub import ModelCard

    from card_rules import problems

    card = (out / "README.md").read_text()
    data = ModelCard.load(out / "README.md").data
    assert data.base_model is None and f"local folder `{sft_dir}`" in card  # the SFT fixture was never pushed
    assert "Anthropic/hh-rlhf" in (data.datasets or []) and problems(out) == []
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["eos_token_id"] == json.loads((sft_dir / "generation_config.json").read_text())["eos_token_id"]
    assert not {"temperature", "top_k", "do_sample", "max_new_tokens"} & set(generation)  # nothing of training
    config = json.loads((out / "config.json").read_text())
    tok_config = json.loads((out / "tokenizer_config.json").read_text())
    assert config["use_cache"] is True and tok_config["eos_token"] == "<|im_end|>"  # a chat model ends its turn
    assert tok_config["model_max_length"] == config["max_position_embeddings"]
    assert not {"is_local", "local_files_only"} & set(tok_config)
    return card


def test_ppo_raises_reward_with_bounded_kl(sft_dir, reward_dir, tmp_path):
    """PPO moves the policy (KL above 0) but not far (bounded), computes in the precision it records, and
    publishes; then the reward should rise. That last part is noisy at this size: on 3 seeds x bf16/fp32 (2026-12-02,
    AVX512-BF16 CPU) the mean of the last 4 of 16 updates beat the first 4 by 0.08-0.25, while one update's score
    spreads by ~0.35, so a flat run is reported as xfail (with its curve) instead of failing CI."""
    out = tmp_path / "ppo"
    _run("config_tiny.yaml", sft_dir, reward_dir, out, "--total_episodes", "256")
    m = json.loads((out / "run_info.json").read_text())["metrics"]
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    scores = [round(r["objective/scores"], 3) for r in history]
    kls = [round(r["objective/kl"], 3) for r in history]
    print(f"PPO scores per update: {scores}\nPPO KL per update: {kls}")
    assert len(scores) == 16 and 0.1 < m["kl_max"] < KL_BOUND, m
    card = _card_parents(out, sft_dir)
    assert str(reward_dir) in card and "kl_coef" in card
    assert (out / "reward.png").is_file() and (out / "kl.png").is_file()
    AutoModelForCausalLM.from_pretrained(out)  # the policy alone, loadable
    if not m["reward_last"] > m["reward_first"]:
        pytest.xfail(f"reward flat at 1M parameters: {m['reward_first']} -> {m['reward_last']}, scores {scores}")


def test_ppo_runs_in_the_precision_it_records(sft_dir, reward_dir, tmp_path):
    """TRL's PPOTrainer builds its own Accelerator: without precision.tell_accelerate it ran fp32 under a bf16
    config, and the card said bf16. The record now comes from the trainer's Accelerator (precision.computed_in)."""
    for chosen in ("bf16", "fp32"):
        out = tmp_path / chosen
        _run("config_tiny.yaml", sft_dir, reward_dir, out, "--total_episodes", "16", "--precision", chosen)
        assert json.loads((out / "run_info.json").read_text())["metrics"]["precision"] == chosen


def test_ppo_publishes_a_card_by_the_hub_rules_and_its_chat_stops(sft_dir, reward_dir, tmp_path):
    """`make rlhf`'s output (PPO) checked on its own: inside the xfailed reward test above, a card that broke the
    Hub's rules or generation settings leaked from training would go unseen."""
    out = tmp_path / "ppo"
    _run("config_tiny.yaml", sft_dir, reward_dir, out, "--total_episodes", "32")
    card = _card_parents(out, sft_dir)
    assert str(reward_dir) in card and "kl_coef" in card
    AutoModelForCausalLM.from_pretrained(out)


@pytest.mark.parametrize("config", ["config_grpo_tiny.yaml", "config_rloo_tiny.yaml", "config_dpo_tiny.yaml"])
def test_grpo_rloo_and_dpo_run_a_few_steps(config, sft_dir, reward_dir, tmp_path):
    out = tmp_path / config.split("_")[1]
    dpo = "dpo" in config
    _run(config, sft_dir, None if dpo else reward_dir, out, "--max_steps", "3",
         *(["--max_length", "128"] if dpo else []))
    m = json.loads((out / "run_info.json").read_text())["metrics"]
    assert m["steps"] == 3 and m["algorithm"] in config
    card = _card_parents(out, sft_dir)
    if "dpo" not in config:  # the online algorithms are scored by the reward model
        assert str(reward_dir) in card
    AutoModelForCausalLM.from_pretrained(out)


def test_unknown_algorithm_is_one_line(sft_dir, reward_dir, tmp_path):
    proc = run_recipe("06_rlhf", "--config", "recipes/06_rlhf/config_tiny.yaml", "--algorithm", "a2c",
                      "--output_dir", str(tmp_path / "x"), ok=False)
    assert "algorithm must be one of" in error_line(proc)


def test_a_config_given_to_the_wrong_script_names_the_right_one(tmp_path):
    proc = run_recipe("06_rlhf", "--config", "recipes/06_rlhf/config_grpo_tiny.yaml", "--output_dir",
                      str(tmp_path / "x"), ok=False)  # run.py is PPO
    assert error_line(proc) == "error: algorithm grpo runs with recipes/06_rlhf/online.py, not run.py"


@pytest.mark.parametrize("script,argv,message", [
    ("dpo.py", ["--config", "recipes/06_rlhf/config_rloo_tiny.yaml"],
     "algorithm rloo runs with recipes/06_rlhf/online.py, not dpo.py"),
    ("online.py", ["--algorithm", "dpo"], "algorithm dpo runs with recipes/06_rlhf/dpo.py, not online.py"),
    ("online.py", ["--algorithm", "ppo"], "algorithm ppo runs with recipes/06_rlhf/run.py, not online.py"),
    ("run.py", ["--algorithm", "ppo"], "algorithm: run.py runs ppo only; drop the key"),
    ("online.py", ["--algorithm", "a2c"], "algorithm must be one of ppo, grpo, rloo, dpo, got 'a2c'"),
])
def test_each_script_refuses_an_algorithm_another_one_runs(monkeypatch, script, argv, message):
    from conftest import ROOT
    from fromscratch.alignment.rlhf import check_script
    from fromscratch.config import UserError

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr("sys.argv", [script, *argv])
    with pytest.raises(UserError, match=re.escape(message)):
        check_script(script, "grpo" if script == "online.py" else None)


def test_each_script_runs_its_own_algorithms(monkeypatch):
    from conftest import ROOT
    from fromscratch.alignment.rlhf import check_script

    monkeypatch.chdir(ROOT)
    for config, script in SCRIPT_OF.items():
        monkeypatch.setattr("sys.argv", [script, "--config", f"recipes/06_rlhf/{config}"])
        expected = {"config_grpo_tiny.yaml": "grpo", "config_rloo_tiny.yaml": "rloo"}.get(config)
        assert check_script(script, "grpo" if script == "online.py" else None) == expected, config


def _recipe_module(path):
    import importlib.util
    import sys

    name = f"recipe_{path.parent.name}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _types(recipe: str, path) -> tuple:
    """The argument dataclasses the recipe's script parses `path` into."""
    from conftest import ROOT

    if recipe != "06_rlhf":
        module = _recipe_module(ROOT / "recipes" / recipe / "run.py")
        if recipe == "04_sft":
            return module.DataArguments, module.LoraArguments, module.SFTArguments
        return module.DataArguments, module.RewardArguments
    module = _recipe_module(ROOT / "recipes" / recipe / SCRIPT_OF[path.name])
    if SCRIPT_OF[path.name] == "run.py":
        return module.PPOPromptArguments, module.PPOArguments
    if SCRIPT_OF[path.name] == "dpo.py":
        return module.PairArguments, module.DPOArguments
    import yaml

    return module.OnlineArguments, module.CONFIGS[yaml.safe_load(path.read_text())["algorithm"]][0]


@pytest.mark.parametrize("recipe", ["04_sft", "05_reward", "06_rlhf"])
def test_every_shipped_config_validates(recipe):
    """Every key of every shipped YAML is a known key of the right type for its TRL config class."""
    from conftest import ROOT
    from fromscratch.config import check_yaml

    paths = sorted((ROOT / "recipes" / recipe).glob("config_*.yaml"))
    if recipe == "06_rlhf":
        assert sorted(p.name for p in paths) == sorted(SCRIPT_OF)  # a new YAML is named with its script above
    for path in paths:
        check_yaml(path, _types(recipe, path))
        for line in path.read_text().splitlines():
            if line and not line.startswith(("#", " ")):
                assert " # " in line or "  #" in line, f"{path.name}: key without a comment: {line}"
