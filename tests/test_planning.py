import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from fromscratch import planning
from fromscratch.config import UserError
from fromscratch.modeling import PRESETS, Shape, build_config, count_parameters


def close(a, b, tol=0.10):
    return abs(a / b - 1) <= tol


@pytest.mark.parametrize("params,flops,tokens", planning.CHINCHILLA_TABLE3)
def test_reproduces_chinchilla_table3_within_10_percent(params, flops, tokens):
    n, d = planning.optimal_for_flops(flops)
    assert close(n, params) and close(d, tokens), (n, d)
    c, d = planning.optimal_for_params(params)
    assert close(c, flops) and close(d, tokens), (c, d)
    _, n = planning.optimal_for_tokens(tokens)
    assert close(n, params), n
    p = planning.plan(compute_flops=flops)
    assert close(p.params, params) and close(p.tokens, tokens) and math.isclose(p.flops, flops, rel_tol=1e-9)


def test_about_twenty_tokens_per_parameter_and_fit_exponent_near_half():
    assert 0.45 < planning.EXPONENT < 0.55  # the paper's Approach 1: a = 0.50
    for c in (1e18, 1e21, 1e24):
        n, d = planning.optimal_for_flops(c)
        assert 15 < d / n < 25


def test_loss_falls_with_scale_and_parametric_optimum_favours_data():
    small, big = planning.plan(compute_flops=1e20), planning.plan(compute_flops=1e22)
    assert planning.E < big.loss < small.loss
    # Approach 3's own optimum is smaller (N ~ C^0.46) and no worse under its own fit.
    assert small.parametric_params < small.params
    assert planning.loss(small.parametric_params, small.parametric_tokens) <= small.loss + 1e-9


def test_budget_from_hardware_and_conflicts():
    c = planning.flops_for_hardware(8, "h100", 7, 0.4)
    assert math.isclose(c, 8 * 989e12 * 0.4 * 7 * 86400)
    assert math.isclose(planning.wall_seconds(c, 8, "h100", 0.4), 7 * 86400)
    with pytest.raises(UserError):
        planning.plan(compute_flops=1e20, params=1e9)
    with pytest.raises(UserError):
        planning.plan()
    with pytest.raises(UserError):
        planning.peak_flops("tpu")


def _built(shape: Shape, vocab: int, family: str, tie: bool) -> int:
    config = build_config(family, "nano", vocab, 128, layers=shape.layers, hidden=shape.hidden, heads=shape.heads,
                          ffn=shape.ffn, kv_heads=shape.kv_heads, tie_word_embeddings=tie)
    with torch.device("meta"):  # no memory: even the 1B shape builds instantly
        return count_parameters(AutoModelForCausalLM.from_config(config))


@pytest.mark.parametrize("family", ["llama", "neox"])
@pytest.mark.parametrize("tie", [True, False])
def test_analytic_count_matches_transformers_exactly(family, tie):
    shapes = [PRESETS["nano"], PRESETS["1b"], planning.shape_for(3e6, 1024, family, tie)]
    for shape in shapes:
        if family == "neox":
            shape = Shape(shape.layers, shape.hidden, shape.heads, 4 * shape.hidden)  # NeoX: no GQA
        assert planning.parameters(shape, 1024, family, tie) == _built(shape, 1024, family, tie), shape


@pytest.mark.parametrize("target", [1e5, 3e6, 125e6, 1e9, 7e9, 70e9])
def test_shape_for_lands_near_the_target(target):
    shape = planning.shape_for(target, 32000 if target > 1e6 else 1024)
    count = planning.parameters(shape, 32000 if target > 1e6 else 1024)
    assert close(count, target, 0.05), (shape, count)
    assert shape.hidden % shape.heads == 0 and shape.heads % shape.kv_heads == 0
    assert shape.hidden / shape.layers < 200  # not a one-layer giant


def test_batch_and_learning_rate_follow_gpt3():
    assert planning.learning_rate(125e6) == pytest.approx(6e-4)
    assert planning.learning_rate(2e9) < planning.learning_rate(125e6)
    assert planning.batch_tokens(1.3e9, 1e12) == pytest.approx(1e6)
    assert planning.batch_tokens(1e6, 2e6) == pytest.approx(1000)  # capped: still ~2,000 steps
