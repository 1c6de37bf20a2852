"""Small-scale experiments (sweeps, ablations) built from a pretraining YAML, the way stage 03 builds its run.

An experiment is "the pretraining run of recipes/03_pretrain, many times, with a few keys changed": it reads the
same YAML keys, holds out the same validation documents and packs the same blocks (stage 03's own
`packing.load_and_pack`), trains with its schedule (`lr_schedule`) and scores the same bits per byte, but builds
the data once and then many models and TrainingArguments from it. Keys are checked against the pretraining
recipe's (a typo fails with one line naming the key and the file).

Beyond stage 03's model keys an experiment knows a few architecture switches (for ablations):
`family: gpt2` (learned absolute positions, LayerNorm, GELU MLP), `parallel_residual` (GPT-NeoX),
`rotary_pct` (GPT-NeoX share of each head's dims that is rotated) and `hidden_act` (the MLP activation).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml
from transformers import GPT2Config, TrainingArguments

from ..artifacts import load_tokenizer
from ..config import UserError, load_yaml, problems
from ..modeling import PRESETS, build_config
from ..pretraining import torch_compile
from ..pretraining.packing import load_and_pack
from ..runinfo import hash_path
from ..sources import check_sources
from ..training import eval_subset, lr_schedule, precision
from ..training.metrics import bits_per_byte
from ..training.stage_args import LIBRARY_CHECKS

MODEL_KEYS = {"family", "preset", "layers", "hidden", "heads", "ffn", "kv_heads", "tie_word_embeddings", "dropout",
              "rope_theta", "attn_implementation"}
SWITCH_KEYS = {"parallel_residual", "rotary_pct", "hidden_act"}
DATA_KEYS = {"sources", "text_column", "tokenizer_dir", "block_size", "validation_fraction",
             "preprocessing_num_workers"}
# Stage 03 keys that do not apply to a throwaway experiment run (no output folder, guard or push of its own).
RUN_ONLY_KEYS = {"overwrite", "resume", "spike_guard", "spike_window", "spike_threshold", "spike_lr_factor",
                 "spike_max_rollbacks", "batch_ramp_tokens", "batch_ramp_start", "push_to_hub", "hub_model_id"}
# eval_tokens / final_eval_tokens: an experiment scores every evaluation on stage 03's final windows (one set:
# trials and variants compare on it)
EXTRA_TRAIN_KEYS = {"min_lr_ratio", "precision", "eval_tokens", "final_eval_tokens"}
TRAIN_KEYS = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}


def load_pretrain_yaml(path: str | Path, overrides: dict | None = None, where: str = "fixed") -> dict:
    """A stage 03 YAML with `overrides` applied; every key checked (unknown -> one line naming it)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"base_config: no pretraining YAML at {path}")
    try:
        cfg = load_yaml(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:  # a key given twice, or not YAML at all
        mark = getattr(err, "problem_mark", None)
        raise UserError(f"{path}{f':{mark.line + 1}' if mark else ''}: not valid YAML "
                        f"({getattr(err, 'problem', err)})") from None
    known = MODEL_KEYS | SWITCH_KEYS | DATA_KEYS | RUN_ONLY_KEYS | EXTRA_TRAIN_KEYS | TRAIN_KEYS
    for origin, items in ((str(path), cfg), (where, overrides or {})):
        for key in items:
            if key not in known:
                raise UserError(f"{origin}: unknown pretraining key '{key}'")
    return {**cfg, **(overrides or {})}


@dataclass
class Data:
    tokenizer: object
    train: object
    val: object
    val_tokens: int
    val_bytes: int
    lineage: list

    def bits_per_byte(self, eval_loss: float) -> float:
        return bits_per_byte(eval_loss, self.val_tokens, self.val_bytes)


def load_data(cfg: dict, seed: int) -> Data:
    """Stage 03's step 2 (packing.load_and_pack), once for every trial or variant."""
    sources = cfg.get("sources", ["default"])
    check_sources(sources)
    tok_dir = cfg.get("tokenizer_dir", "outputs/02_tokenizer")
    tokenizer = load_tokenizer(tok_dir, "tokenizer_dir", "tokenizer")
    train, val, val_tokens, val_bytes, lineage, _ = load_and_pack(
        sources, cfg.get("text_column", "text"), tokenizer, cfg.get("block_size", 256),
        cfg.get("validation_fraction", 0.05), seed=seed, num_proc=cfg.get("preprocessing_num_workers"))
    tok_lineage = {"spec": tok_dir, "role": "tokenizer", "sha256": hash_path(Path(tok_dir) / "tokenizer.json")}
    val = eval_subset.fixed_subset(val, eval_subset.windows_for(cfg.get("final_eval_tokens", 0), cfg.get("block_size", 256)))
    return Data(tokenizer, train, val, val_tokens, val_bytes, [*lineage, tok_lineage])


def model_config(cfg: dict, tokenizer):
    """The transformers config stage 03 would build, plus the ablation switches."""
    block = cfg.get("block_size", 256)
    tokens = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                  pad_token_id=tokenizer.pad_token_id)
    family, dropout = cfg.get("family", "llama"), float(cfg.get("dropout", 0.0))
    shape = {k: cfg.get(k) for k in ("layers", "hidden", "heads", "ffn", "kv_heads")}
    if family == "gpt2":  # learned absolute positions: the one family here without rotary embeddings
        preset = cfg.get("preset", "tiny")
        if preset not in PRESETS:
            raise UserError(f"model preset '{preset}' unknown (have: {', '.join(PRESETS)})")
        base = PRESETS[preset]
        config = GPT2Config(
            vocab_size=len(tokenizer), n_positions=block, n_embd=shape["hidden"] or base.hidden,
            n_layer=shape["layers"] or base.layers, n_head=shape["heads"] or base.heads,
            n_inner=shape["ffn"] or base.ffn, activation_function=cfg.get("hidden_act", "gelu_new"),
            resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
            tie_word_embeddings=cfg.get("tie_word_embeddings", True), **tokens)
    else:
        config = build_config(family, cfg.get("preset", "tiny"), len(tokenizer), block, **tokens,
                              tie_word_embeddings=cfg.get("tie_word_embeddings", True), dropout=dropout,
                              rope_theta=cfg.get("rope_theta", 10000.0), **shape)
        if "hidden_act" in cfg:
            config.hidden_act = cfg["hidden_act"]
        if family == "neox" and "parallel_residual" in cfg:
            config.use_parallel_residual = bool(cfg["parallel_residual"])
        if family == "neox" and "rotary_pct" in cfg:
            config.rope_parameters = {**config.rope_parameters, "partial_rotary_factor": float(cfg["rotary_pct"])}
    if family != "neox" and ({"parallel_residual", "rotary_pct"} & set(cfg)):
        raise UserError(f"parallel_residual and rotary_pct are GPT-NeoX switches (family: neox), not {family}")
    config._attn_implementation = cfg.get("attn_implementation", "sdpa")
    return config


def training_args(cfg: dict, output_dir: str | Path, **overrides) -> TrainingArguments:
    """TrainingArguments from the YAML's Trainer keys, with stage 03's LR floor and precision choice."""
    kw = {k: v for k, v in cfg.items() if k in TRAIN_KEYS}
    kw.update(overrides, output_dir=str(output_dir))
    bad = problems(kw, LIBRARY_CHECKS)
    if bad:
        raise UserError(f"training arguments: {bad[0][0]} {bad[0][1]}")
    choice = precision.choose(cfg.get("precision", "auto"), bool(kw.get("use_cpu", False)))
    kw.update(choice.kwargs())  # before building: TrainingArguments derive state from them in __post_init__
    kw["torch_compile"] = torch_compile.experiment_switch(kw.get("torch_compile", False))
    try:
        args = TrainingArguments(**kw)
    except (ValueError, TypeError) as err:
        raise UserError(f"training arguments: {str(err).strip().splitlines()[0]}") from None
    lr_schedule.apply(args, float(cfg.get("min_lr_ratio", 0.1)))
    return args
