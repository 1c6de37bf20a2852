"""Pretraining with a batch-size ramp: the tokens per optimizer step really grow (read back from the log)."""

import json

from conftest import run_recipe


def test_ramp_grows_tokens_per_step_in_the_log(tokenizer_dir, tmp_path):
    out = tmp_path / "ramp"
    run_recipe("03_pretrain", "--config", "recipes/03_pretrain/config_tiny.yaml", "--preset", "nano",
               "--sources", "default:tinyshakespeare", "--tokenizer_dir", str(tokenizer_dir), "--block_size", "32",
               "--max_steps", "12", "--logging_steps", "1", "--eval_strategy", "no", "--save_strategy", "no",
               "--per_device_train_batch_size", "8", "--gradient_accumulation_steps", "2",
               "--batch_ramp_tokens", "1000", "--batch_ramp_start", "2", "--spike_guard", "false",
               "--validation_fraction", "0.01", "--report_to", "none", "--disable_tqdm", "true",
               "--output_dir", str(out))
    logs = [r for r in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in r]
    claimed = [r["tokens_per_step"] for r in logs]
    assert claimed[0] < claimed[-1] == 8 * 2 * 32  # from the start size up to the target global batch
    assert all(a <= b for a, b in zip(claimed, claimed[1:]))
    # The Trainer's own count of tokens fed to the model agrees, step by step.
    seen = [logs[0]["num_input_tokens_seen"]] + [b["num_input_tokens_seen"] - a["num_input_tokens_seen"]
                                                 for a, b in zip(logs, logs[1:])]
    assert seen == claimed
    assert "Batch-size ramp" in (out / "README.md").read_text()
