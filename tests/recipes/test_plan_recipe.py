import importlib.util
import json
import math
import re
import sys

import pytest
import yaml

from conftest import ROOT, error_line, run_recipe
from test_commented_yaml import key_comments
from fromscratch import commented_yaml, planning
from fromscratch.config import check_yaml


def plan(tmp_path, *args, ok=True):
    out = tmp_path / "plan"
    proc = run_recipe("00_plan", "--config", "recipes/00_plan/config.yaml", "--output_dir", str(out),
                      "--output_json", str(tmp_path / "plan.json"), *args, ok=ok)
    return proc, out


def test_compute_budget_reproduces_the_1b_row(tmp_path):
    proc, out = plan(tmp_path, "--compute_flops", "1.21e20")
    result = json.loads((tmp_path / "plan.json").read_text())
    assert {"flops", "params", "tokens", "loss"} <= result.keys()
    assert all(isinstance(result[k], float) for k in ("flops", "params", "tokens", "loss"))
    assert math.isclose(result["params"], 1e9, rel_tol=0.1) and math.isclose(result["tokens"], 20.2e9, rel_tol=0.1)
    assert abs(result["shape"]["parameters"] / result["params"] - 1) < 0.05
    assert result == json.loads((out / "plan.json").read_text())
    assert (out / "run_info.json").is_file() and "Recommended:" in proc.stdout


@pytest.mark.parametrize("args,key,expected", [
    (["--params", "1e10"], "tokens", 205.1e9),
    (["--tokens", "1.5e12"], "params", 67e9),
])
def test_size_budgets_follow_the_table(tmp_path, args, key, expected):
    plan(tmp_path, *args)
    assert math.isclose(json.loads((tmp_path / "plan.json").read_text())[key], expected, rel_tol=0.1)


def test_hardware_budget_and_time_round_trip(tmp_path):
    plan(tmp_path, "--gpus", "8", "--gpu_type", "h100", "--days", "7", "--mfu", "0.4")
    r = json.loads((tmp_path / "plan.json").read_text())
    assert math.isclose(r["flops"], 8 * 989e12 * 0.4 * 7 * 86400, rel_tol=1e-9)
    assert abs(r["hardware"]["days"] / 7 - 1) < 0.1  # the planned shape and whole steps land near the budget
    assert r["recommended"]["micro_batch"] * r["recommended"]["accumulation"] * 8 == r["batch"]["global_batch_sequences"]


def test_conflicting_budget_fails_with_one_line(tmp_path):
    proc, _ = plan(tmp_path, "--days", "7", "--params", "1e9", ok=False)
    assert "--days" in error_line(proc)


def test_emitted_yaml_trains_with_the_planned_parameter_count(tmp_path, tokenizer_dir):
    """A tiny plan -> its pretrain.yaml runs 2 steps in stage 03 and builds exactly the planned model."""
    _, out = plan(tmp_path, "--params", "2e5", "--vocab_size", "1024", "--seq_len", "64", "--gpus", "1")
    config = out / "pretrain.yaml"
    text = config.read_text()
    tiny = yaml.safe_load((ROOT / "recipes/03_pretrain/config_tiny.yaml").read_text())
    emitted = yaml.safe_load(text)
    assert set(tiny) <= set(emitted), set(tiny) - set(emitted)
    for line in text.splitlines():
        assert line.startswith("#") or re.search(r"\S\s+# \S", line), f"uncommented: {line}"
    # every key's comment is stage 03's own (its config_tiny.yaml), not a second hand-kept copy
    assert key_comments(text) == commented_yaml.comments(ROOT / "recipes/03_pretrain/config_tiny.yaml")
    assert emitted["use_cpu"] is False and emitted["resume"] == "auto" and emitted["layers"] > 0
    planned = json.loads((tmp_path / "plan.json").read_text())["shape"]["parameters"]
    run = tmp_path / "model"
    proc = run_recipe("03_pretrain", "--config", str(config), "--tokenizer_dir", str(tokenizer_dir),
                      "--sources", "default:tinyshakespeare", "--validation_fraction", "0.05", "--max_steps", "2",
                      "--report_to", "none", "--disable_tqdm", "true", "--output_dir", str(run))
    info = json.loads((run / "run_info.json").read_text())
    assert info["metrics"]["parameters"] == planned
    # A GPU plan on a machine without a GPU trains on the CPU in the CPU's precision, and says so in one line.
    from fromscratch.training import precision
    fell_back = [line for line in proc.stdout.splitlines() if "no GPU here: training on the CPU" in line]
    assert len(fell_back) == (0 if precision.accelerator_present() else 1), proc.stdout[-2000:]
    assert info["metrics"]["precision"] == precision.resolve("auto", use_cpu=not precision.accelerator_present())


def _pretrain_types():
    spec = importlib.util.spec_from_file_location("pretrain_recipe", ROOT / "recipes/03_pretrain/run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through the module
    spec.loader.exec_module(module)
    return module.ModelArguments, module.DataArguments, module.PretrainArguments


@pytest.mark.parametrize("name,size", [("config_125m.yaml", 110e6), ("config_1b.yaml", 1.04e9)])
def test_real_scale_configs_parse_and_match_their_plan(name, size):
    path = ROOT / "recipes/03_pretrain" / name
    data = check_yaml(path, _pretrain_types())
    for line in path.read_text().splitlines():
        assert line.startswith("#") or " # " in line, f"{name}: uncommented: {line}"
    assert data["use_cpu"] is False and data["precision"] == "auto"
    from fromscratch.modeling import PRESETS
    n = planning.parameters(PRESETS[data["preset"]], 32000)
    assert math.isclose(n, size, rel_tol=0.01)
    tokens = data["max_steps"] * data["per_device_train_batch_size"] * data["gradient_accumulation_steps"] * 8 \
        * data["block_size"]
    assert math.isclose(tokens, planning.optimal_for_params(n)[1], rel_tol=0.1)  # its Chinchilla budget on 8 GPUs
    tok = yaml.safe_load((ROOT / "recipes/02_tokenizer/config_32k.yaml").read_text())
    assert tok["vocab_size"] == 32000
