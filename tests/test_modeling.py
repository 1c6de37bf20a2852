import pytest
import torch
from transformers import AutoModelForCausalLM

from fromscratch.config import UserError
from fromscratch.modeling import PRESETS, build_config, count_parameters
from fromscratch.training.metrics import bits_per_byte, perplexity


def test_llama_preset_builds_the_named_shape():
    cfg = build_config("llama", "tiny", 4096, 256, tie_word_embeddings=False)
    model = AutoModelForCausalLM.from_config(cfg)
    shape = PRESETS["tiny"]
    assert type(model).__name__ == "LlamaForCausalLM"
    assert len(model.model.layers) == shape.layers and model.config.hidden_size == shape.hidden
    assert model.model.layers[0].mlp.gate_proj.out_features == shape.ffn  # SwiGLU: gate + up + down
    assert type(model.model.norm).__name__ == "LlamaRMSNorm"
    untied = count_parameters(model)
    tied = count_parameters(AutoModelForCausalLM.from_config(build_config("llama", "tiny", 4096, 256)))
    assert untied - tied == 4096 * shape.hidden


def test_neox_option_has_partial_rotary_and_parallel_residual():
    cfg = build_config("neox", "nano", 1024, 128)
    model = AutoModelForCausalLM.from_config(cfg)
    assert type(model).__name__ == "GPTNeoXForCausalLM"
    assert model.config.use_parallel_residual is True
    assert model.config.rope_parameters["partial_rotary_factor"] == 0.25
    out = model(input_ids=torch.randint(0, 1024, (2, 16)), labels=torch.randint(0, 1024, (2, 16)))
    assert torch.isfinite(out.loss)


def test_1b_preset_is_about_a_billion_parameters():
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(build_config("llama", "1b", 32000, 2048))
    assert 0.95e9 < count_parameters(model) < 1.1e9


def test_bad_shapes_fail_with_one_line():
    with pytest.raises(UserError, match="not divisible"):
        build_config("llama", "tiny", 100, 64, heads=3)
    with pytest.raises(UserError, match="family 'gpt5' unknown"):
        build_config("gpt5", "tiny", 100, 64)


def test_bits_per_byte_and_perplexity():
    # A uniform model over 256 byte-tokens costs exactly 8 bits per byte.
    assert bits_per_byte(torch.log(torch.tensor(256.0)).item(), tokens=1000, n_bytes=1000) == pytest.approx(8.0)
    # Tokens of 4 bytes each at the same loss: a quarter of the bits per byte.
    assert bits_per_byte(2.0, tokens=250, n_bytes=1000) == pytest.approx(2.0 * 250 / (1000 * 0.6931471805599453))
    assert perplexity(0.0) == 1.0 and perplexity(1e6) < float("inf")
