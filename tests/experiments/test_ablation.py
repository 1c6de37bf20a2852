"""Each ablation switch of the shipped config changes the model it claims to change (module types, parameter
counts, behaviour with identical weights), and bad variants fail with one line."""

from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM

from fromscratch.config import UserError
from fromscratch.experiments.ablation import check_variants, describe
from fromscratch.experiments.experiment import model_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG = yaml.safe_load((ROOT / "recipes/09_ablate/config_tiny.yaml").read_text())
VOCAB, HIDDEN = 256, 64


class Tok:  # model_config needs only the vocabulary size and the special token ids
    bos_token_id, eos_token_id, pad_token_id = 0, 1, 2

    def __len__(self):
        return VOCAB


def build(**over):
    torch.manual_seed(0)
    cfg = {"family": "llama", "preset": "nano", "block_size": 32, **over}
    return AutoModelForCausalLM.from_config(model_config(cfg, Tok())).eval()


def kinds(model):
    return {type(m).__name__ for m in model.modules()}


@pytest.fixture(scope="module")
def base():
    return build()


def variant(name):
    return build(**CONFIG["variants"][name])


def test_shipped_variants_are_valid():
    assert check_variants(CONFIG["variants"]) == CONFIG["variants"]


def test_untied_adds_an_output_embedding(base):
    m = variant("untied")
    assert describe(base, m)["parameter_delta"] == VOCAB * HIDDEN
    assert m.lm_head.weight.data_ptr() != m.model.embed_tokens.weight.data_ptr()
    assert base.lm_head.weight.data_ptr() == base.model.embed_tokens.weight.data_ptr()


def test_gelu_swaps_the_mlp_activation(base):
    m = variant("gelu")
    assert type(base.model.layers[0].mlp.act_fn).__name__ == "SiLUActivation"
    assert "GELU" in type(m.model.layers[0].mlp.act_fn).__name__
    assert describe(base, m)["parameter_delta"] == 0


def test_dropout_makes_training_forward_passes_random(base):
    x = torch.randint(3, VOCAB, (2, 16))
    for model, random in ((base, False), (variant("dropout"), True)):
        model.train()
        a, b = model(x).logits, model(x).logits
        assert (not torch.equal(a, b)) == random
        model.eval()
        assert torch.equal(model(x).logits, model(x).logits)


def test_neox_parallel_and_serial_differ_only_in_the_residual_wiring(base):
    par, ser = variant("neox_parallel"), variant("neox_serial")
    assert "GPTNeoXLayer" in kinds(par) and "LlamaDecoderLayer" in describe(base, par)["modules_removed"]
    assert par.config.use_parallel_residual and not ser.config.use_parallel_residual
    assert describe(par, ser)["parameter_delta"] == 0 and describe(par, ser)["config_changed"] == ["use_parallel_residual"]
    ser.load_state_dict(par.state_dict())  # the same weights, wired in series instead of in parallel
    x = torch.randint(3, VOCAB, (1, 16))
    assert not torch.allclose(par(x).logits, ser(x).logits)


def test_learned_positions_has_a_position_table_and_no_rotary(base):
    m = variant("learned_positions")
    assert isinstance(m.transformer.wpe, torch.nn.Embedding) and m.transformer.wpe.weight.shape == (32, HIDDEN)
    assert not any("Rotary" in k for k in kinds(m)) and any("Rotary" in k for k in kinds(base))
    x = torch.randint(3, VOCAB, (1, 8))  # positions matter through the table: shifting it changes the output
    before = m(x).logits
    with torch.no_grad():
        m.transformer.wpe.weight.add_(1.0)
    assert not torch.allclose(before, m(x).logits)


@pytest.mark.parametrize("variants,words", [
    ({"fast": {"learning_rate": 0.1}}, "variants.fast.learning_rate"),
    ({"base": {"dropout": 0.1}}, "variants.base"),
    ({"x": {}}, "variants.x"),
])
def test_bad_variants_fail_with_one_line(variants, words):
    with pytest.raises(UserError, match=words):
        check_variants(variants)


def test_neox_switch_on_llama_is_refused():
    with pytest.raises(UserError, match="parallel_residual"):
        build(parallel_residual=False)
