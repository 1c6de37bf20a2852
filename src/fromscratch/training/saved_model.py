"""What a saved model folder must say so that plain transformers (pipeline, generate, lm-eval) uses it as trained.

Called on the output folder after the Trainer has written weights and tokenizer, because the Trainer leaves
training-time settings there: `use_cache: false` in config.json (TrainingArguments.use_cache), a tokenizer
whose `model_max_length` is the stage-02 default rather than the model's context, load-time keys
(`is_local`, `local_files_only`) that transformers 5.24 copies into tokenizer_config.json, and for PPO the
sampling settings of training (temperature, top_k 0, ...) in generation_config.json.

A chat model (stages 04 and 06) ends its turn with `<|im_end|>`, the token its chat template closes every
assistant message with: that becomes the tokenizer's eos and the first stop of `generate`. The pretraining
document end (`<|eos|>`) stays a stop too, for a reply that drifts into free text.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import GenerationConfig

TURN_END = "<|im_end|>"
LOAD_ONLY_KEYS = ("is_local", "local_files_only")  # how it was loaded, not what it is


def chat_stops(tokenizer, document_eos: int | None) -> list[int]:
    """The ids a chat model's generate stops at: its turn end first, then the pretraining document end (read
    before SFT, which makes the turn end the tokenizer's eos)."""
    turn_end = tokenizer.convert_tokens_to_ids(TURN_END)
    return [turn_end] + ([document_eos] if document_eos is not None and document_eos != turn_end else [])


def stops_of(model_dir: str, tokenizer) -> list[int]:
    """The stops a chat model was saved with (its generation_config), kept by a stage that tunes it further."""
    saved = GenerationConfig.from_pretrained(model_dir).eos_token_id
    return saved if isinstance(saved, list) else chat_stops(tokenizer, saved)


def finish(folder: str | Path, tokenizer, *, stops: list[int] | None = None, max_positions: int | None = None
           ) -> dict:
    """Rewrite config.json, generation_config.json and the tokenizer in `folder` for inference; returns
    the generation settings written (empty for a model that does not generate, like a reward model).
    `stops`: a chat model's stop ids (chat_stops); the turn end becomes the tokenizer's eos. None: a base
    model, which stops at the tokenizer's eos."""
    folder = Path(folder)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}  # none: a LoRA adapter alone
    if config:
        config["use_cache"] = True  # the Trainer saves its training-time False; generation is slow without the cache
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    if stops:
        tokenizer.eos_token = TURN_END
    positions = config.get("max_position_embeddings") or max_positions
    if positions:
        tokenizer.model_max_length = positions  # pipeline and lm-eval truncate to this: it must be the model's
    for key in LOAD_ONLY_KEYS:
        tokenizer.init_kwargs.pop(key, None)
    tokenizer.save_pretrained(folder)

    generates = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in config.get("architectures") or [])
    if not generates:
        (folder / "generation_config.json").unlink(missing_ok=True)
        return {}
    # A fresh GenerationConfig: only the token ids, so no sampling setting of training leaks into inference.
    generation = GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=stops or tokenizer.eos_token_id,
                                  pad_token_id=tokenizer.pad_token_id)
    generation.save_pretrained(folder)
    return generation.to_diff_dict()
