"""Search-space parsing, the power-law fit and the planner hand-off of fromscratch.experiments.sweep."""

import json
import math

import pytest

from fromscratch.config import UserError
from fromscratch.experiments.sweep import fit_power_law, lr_optimum, parse_space, read_target_params

GOOD = {"learning_rate": {"low": 1e-4, "high": 3e-2, "log": True}, "warmup_steps": {"low": 0, "high": 0.2},
        "per_device_train_batch_size": {"choices": [8, 16]}, "logging_steps": {"low": 1, "high": 9, "type": "int"},
        "dropout": {"choices": [0.0, 0.1]}}


def test_a_good_space_parses_into_ranges_and_choices():
    params = {p.name: p for p in parse_space(GOOD)}
    assert params["learning_rate"].log and params["per_device_train_batch_size"].kind == "categorical"
    assert params["logging_steps"].kind == "int"


@pytest.mark.parametrize("name,spec,words", [
    ("learning_rate", {"low": 0.1, "high": 0.01}, "low must be below high"),
    ("learning_rate", {"low": 0.0, "high": 0.01, "log": True}, "log range needs low > 0"),
    ("learning_rate", {"low": 0.001}, "needs both low and high"),
    ("learning_rate", {"low": 1e-4, "high": 1e-2, "scale": "log"}, "unknown field 'scale'"),
    ("learning_rate", 0.001, "expects a mapping"),
    ("learning_rate", {"low": "a", "high": 1}, "must be numbers"),
    ("warmup_steps", {"choices": []}, "non-empty list"),
    ("leraning_rate", {"low": 1e-4, "high": 1e-2}, "not a training argument"),
    ("hidden", {"choices": [64, 128]}, "use scales"),
])
def test_a_malformed_space_fails_with_one_line_naming_the_key(name, spec, words):
    with pytest.raises(UserError) as err:
        parse_space({name: spec})
    message = str(err.value)
    assert f"space.{name}" in message and words in message and "\n" not in message


def test_power_law_fit_recovers_a_known_exponent():
    sizes = [1e5, 4e5, 1.6e6]
    a, b = fit_power_law(sizes, [0.5 * s ** -0.35 for s in sizes])
    assert math.isclose(b, -0.35, rel_tol=1e-9) and math.isclose(a, 0.5, rel_tol=1e-9)
    with pytest.raises(ValueError):
        fit_power_law([1e5], [0.01])


def test_target_size_from_a_planner_json(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"params": 1.2e9, "tokens": 2.4e10}))
    assert read_target_params(None, str(plan)) == 1.2e9
    plan.write_text(json.dumps({"tokens": 1}))
    with pytest.raises(UserError, match="'params'"):
        read_target_params(None, str(plan))


def test_lr_optimum_finds_the_bottom_of_a_parabola_and_falls_back_otherwise():
    lrs = [1e-3, 3e-3, 1e-2, 3e-2]
    lr, how = lr_optimum(lrs, [(math.log(x) - math.log(5e-3)) ** 2 for x in lrs])
    assert how == "parabola vertex" and math.isclose(lr, 5e-3, rel_tol=1e-6)
    assert lr_optimum(lrs, [1.0, 2.0, 3.0, 4.0]) == (1e-3, "best trial")  # bottom outside the range
    assert lr_optimum([1e-3, 1e-2], [2.0, 1.0]) == (1e-2, "best trial")
