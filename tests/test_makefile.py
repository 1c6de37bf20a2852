"""The Makefile's targets that read a stage's output: each one checks it by the stage's finished marker, so a
stage that changes what else it writes cannot make a consumer re-make (or refuse to re-make) its input."""

from __future__ import annotations

import re
import subprocess

import pytest

from conftest import ROOT, recipe_env, run_recipe
from fromscratch import artifacts

# target -> the stage outputs it reads (the demo leaves all of them in outputs/)
CONSUMERS = {"sweep": ["02_tokenizer"], "sweep-transfer": ["02_tokenizer"], "ablate": ["02_tokenizer"],
             "rlhf": ["05_reward"], "grpo": ["05_reward"], "rloo": ["05_reward"],
             "mitigation-report": ["01_data", "02_tokenizer", "03_pretrain"]}
STAGE_SCRIPTS = re.compile(r"recipes/\d\d_\w+/(run|tokenize_corpus|online|dpo)\.py")


def test_the_makefile_marker_is_the_stages_and_no_target_checks_another_file():
    text = (ROOT / "Makefile").read_text()
    assert f"FINISHED := {artifacts.FINISHED_MARKER}" in text
    # every freshness check goes through `needs`: no target names a file a stage happens to write
    assert not re.findall(r"test -f outputs/", text), re.findall(r".*test -f outputs/.*", text)
    for target in CONSUMERS:
        body = re.search(rf"^{re.escape(target)}: setup\n((?:\t.*\n)+)", text, re.M)
        assert body and "$(call needs,outputs/" in body.group(1), target


@pytest.fixture(scope="module")
def demo_tree(tmp_path_factory, tokenizer_dir, pretrained_dir, reward_dir):
    """A checkout whose outputs/ holds finished stage outputs, as after `make demo` (real ones: the session's
    fixtures, and a data stage run here on the embedded speeches)."""
    tree = tmp_path_factory.mktemp("checkout")
    for name in ("Makefile", "pyproject.toml", "recipes", "src", "accelerate_configs", ".venv"):
        (tree / name).symlink_to(ROOT / name)
    outputs = tree / "outputs"
    outputs.mkdir()
    run_recipe("01_data", "--config", "recipes/01_data/config_tiny.yaml", "--sources", "default:us_speeches",
               "--weights", "1", "--near_dedup", "false", "--toxicity_threshold", "-1",
               "--output_dir", str(outputs / "01_data"))
    for name, path in (("02_tokenizer", tokenizer_dir), ("03_pretrain", pretrained_dir), ("05_reward", reward_dir)):
        (outputs / name).symlink_to(path)
    return tree


@pytest.mark.parametrize("target", sorted(CONSUMERS))
def test_a_consumer_target_uses_the_finished_outputs_as_they_are(demo_tree, target):
    # make -n runs the $(MAKE) lines it would run, so a check that misses a finished output shows as the
    # producing stage's command in the dry run
    for stage in CONSUMERS[target]:
        assert artifacts.is_finished(demo_tree / "outputs" / stage), stage
    proc = subprocess.run(["make", "-n", target, "ARGS=--overwrite true"], cwd=demo_tree, env=recipe_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    scripts = {m.group(0) for m in STAGE_SCRIPTS.finditer(proc.stdout)}
    own = {"sweep": "08_sweep", "sweep-transfer": "08_sweep", "ablate": "09_ablate", "rlhf": "06_rlhf",
           "grpo": "06_rlhf", "rloo": "06_rlhf", "mitigation-report": "10_mitigate"}[target]
    assert scripts and all(own in s for s in scripts), (target, scripts, proc.stdout[-2000:])


def test_a_missing_output_is_made_first_with_its_own_defaults(demo_tree, tmp_path):
    # without outputs/05_reward, rlhf makes it first, and the ARGS given for PPO are not handed to the reward stage
    tree = tmp_path / "checkout"
    tree.mkdir()
    for p in demo_tree.iterdir():
        if p.name != "outputs":
            (tree / p.name).symlink_to(p.resolve() if p.is_symlink() else p)
    proc = subprocess.run(["make", "-n", "rlhf", "ARGS=--total_episodes 8"], cwd=tree, env=recipe_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    reward = next(line for line in proc.stdout.splitlines() if "recipes/05_reward/run.py" in line)
    ppo = next(line for line in proc.stdout.splitlines() if "recipes/06_rlhf/run.py" in line)
    assert "--total_episodes" not in reward and "--total_episodes 8" in ppo
