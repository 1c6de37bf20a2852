"""Model presets -> transformers configs. Models are always built from a config (random init), never downloaded.

Two families:
- `llama`: RoPE, SwiGLU, RMSNorm, no biases (Llama / Mistral / most open models today).
- `neox`: GPT-NeoX with the changes the seed describes: rotary on 25% of each head's dims and attention and MLP
  computed in parallel from the same input (one all-reduce fewer per layer at scale).
Sizes go from ~1M parameters (CPU, minutes) to 1B+ (GPU clusters); only the YAML changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import GPTNeoXConfig, LlamaConfig, PretrainedConfig

from .config import UserError


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    heads: int
    ffn: int
    kv_heads: int | None = None  # grouped-query attention when smaller than heads


PRESETS: dict[str, Shape] = {
    "nano": Shape(layers=2, hidden=64, heads=4, ffn=172),  # ~0.3M + embeddings: unit tests
    # ~0.6M + embeddings: the CPU demo. 3 blocks, not 4: at equal training time, 3 blocks x 1.2 epochs beat 4 x 1
    # by 0.06 bits/byte on two seeds (recipes/03_pretrain/README.md); figures dated before 2026-12-02 used 4.
    "tiny": Shape(layers=3, hidden=128, heads=4, ffn=344),
    "small": Shape(layers=4, hidden=256, heads=8, ffn=688),  # ~3.2M + embeddings: CPU experiments
    "125m": Shape(layers=12, hidden=768, heads=12, ffn=2048),  # GPT-3 Small shape
    "350m": Shape(layers=24, hidden=1024, heads=16, ffn=2736),
    "1b": Shape(layers=16, hidden=2048, heads=32, ffn=8192, kv_heads=8),  # Llama-3.2-1B shape
    "3b": Shape(layers=28, hidden=3072, heads=24, ffn=8192, kv_heads=8),
}


def build_config(family: str, preset: str, vocab_size: int, max_position_embeddings: int, *,
                 bos_token_id: int | None = None, eos_token_id: int | None = None, pad_token_id: int | None = None,
                 tie_word_embeddings: bool = True, dropout: float = 0.0, rope_theta: float = 10000.0,
                 layers: int | None = None, hidden: int | None = None, heads: int | None = None,
                 ffn: int | None = None, kv_heads: int | None = None) -> PretrainedConfig:
    """A transformers config for a preset, with optional per-dimension overrides."""
    if preset not in PRESETS:
        raise UserError(f"model preset '{preset}' unknown (have: {', '.join(PRESETS)})")
    base = PRESETS[preset]
    layers = layers or base.layers
    hidden = hidden or base.hidden
    heads = heads or base.heads
    ffn = ffn or base.ffn
    kv_heads = kv_heads or base.kv_heads or heads
    if hidden % heads:
        raise UserError(f"model: hidden size {hidden} is not divisible by {heads} heads")
    if heads % kv_heads:
        raise UserError(f"model: {heads} heads are not divisible by {kv_heads} key/value heads")
    tokens = dict(bos_token_id=bos_token_id, eos_token_id=eos_token_id, pad_token_id=pad_token_id)
    if family == "llama":
        return LlamaConfig(
            vocab_size=vocab_size, hidden_size=hidden, intermediate_size=ffn, num_hidden_layers=layers,
            num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=max_position_embeddings,
            rms_norm_eps=1e-5, tie_word_embeddings=tie_word_embeddings, attention_dropout=dropout,
            rope_parameters={"rope_type": "default", "rope_theta": rope_theta}, **tokens,
        )
    if family == "neox":
        return GPTNeoXConfig(
            vocab_size=vocab_size, hidden_size=hidden, intermediate_size=ffn, num_hidden_layers=layers,
            num_attention_heads=heads, max_position_embeddings=max_position_embeddings, use_parallel_residual=True,
            rope_parameters={"rope_type": "default", "rope_theta": rope_theta, "partial_rotary_factor": 0.25},
            tie_word_embeddings=tie_word_embeddings, attention_dropout=dropout, hidden_dropout=dropout, **tokens,
        )
    raise UserError(f"model family '{family}' unknown (have: llama, neox)")


def count_parameters(model) -> int:
    """Unique parameters (tied embeddings counted once; a ZeRO-3-partitioned parameter by its full size)."""
    return sum(getattr(p, "ds_numel", p.numel()) for p in {id(p): p for p in model.parameters()}.values())
