import json

from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

from conftest import error_line, run_recipe


def test_pretrained_model_learned_reloads_and_generates(pretrained_dir):
    info = json.loads((pretrained_dir / "run_info.json").read_text())
    m = info["metrics"]
    assert m["eval_loss"] < m["initial_eval_loss"] - 1.0, m  # 40 steps take a nano model well below init
    assert 0 < m["bits_per_byte"] < 8
    model = AutoModelForCausalLM.from_pretrained(pretrained_dir)
    assert (pretrained_dir / "model.safetensors").is_file()
    tok = AutoTokenizer.from_pretrained(pretrained_dir)
    gen = pipeline("text-generation", model=model, tokenizer=tok)
    text = gen("ROMEO:", max_new_tokens=12, do_sample=False)[0]["generated_text"]
    assert text.startswith("ROMEO:") and len(text) > len("ROMEO:")


def test_evaluation_scores_the_capped_windows_not_the_whole_split(pretrained_dir):
    # the fixture ran with eval_tokens 2048 and final_eval_tokens 8192 at block_size 128
    info = json.loads((pretrained_dir / "run_info.json").read_text())
    windows = info["metrics"]["eval_windows"]
    assert windows["during_training"] == 16 and windows["final"] == 64, windows
    assert windows["held_out"] > 64  # the split is larger: the cap, not the split, set the cost
    evals = [r for r in json.loads((pretrained_dir / "trainer_state.json").read_text())["log_history"]
             if "eval_loss" in r]
    scored = [round(r["eval_runtime"] * r["eval_samples_per_second"]) for r in evals]  # windows each one read
    assert len(scored) >= 3 and scored[:-1] == [16] * (len(scored) - 1) and scored[-1] == 64, scored
    # the untrained model was scored on the final 64 windows too: the card's before/after are on one set
    start = [r for r in json.loads((pretrained_dir / "trainer_state.json").read_text())["log_history"]
             if "final_eval_loss" in r]
    assert len(start) == 1 and start[0]["step"] == 0
    assert round(start[0]["final_eval_runtime"] * start[0]["final_eval_samples_per_second"]) == 64
    assert info["metrics"]["initial_eval_loss"] == start[0]["final_eval_loss"]


def test_card_carries_metrics_and_valid_metadata(pretrained_dir):
    from huggingface_hub import ModelCard

    from card_rules import problems

    card = ModelCard.load(pretrained_dir / "README.md")
    info = json.loads((pretrained_dir / "run_info.json").read_text())
    # Held out from the embedded text by this run: the figures are in the card text, not in the model-index
    # (which holds results on Hub datasets' own splits).
    assert card.data.eval_results is None
    for key in ("eval_loss", "bits_per_byte"):
        assert f"{info['metrics'][key]:.4f}" in card.text
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-generation"
    assert card.data.datasets == ["karpathy/tiny_shakespeare"] and card.data.base_model is None
    assert problems(pretrained_dir) == []
    assert (pretrained_dir / "loss.png").stat().st_size > 1000 and "loss.png" in card.text
    assert json.loads((pretrained_dir / "trainer_state.json").read_text())["log_history"]


def test_bad_inputs_fail_before_work_with_one_line(tmp_path, tokenizer_dir):
    out = ["--output_dir", str(tmp_path / "out")]
    line = error_line(run_recipe("03_pretrain", "--tokenizer_dir", str(tmp_path / "none"), *out, ok=False))
    assert "tokenizer_dir" in line and str(tmp_path / "none") in line
    line = error_line(run_recipe("03_pretrain", "--tokenizer_dir", str(tokenizer_dir), "--sources",
                                 str(tmp_path / "corpus"), *out, ok=False))
    assert f"data path not found: {tmp_path / 'corpus'}" in line
    cfg = tmp_path / "c.yaml"
    cfg.write_text("presett: tiny\n")
    line = error_line(run_recipe("03_pretrain", "--config", str(cfg), *out, ok=False))
    assert "unknown key 'presett'" in line and "preset" in line
    line = error_line(run_recipe("03_pretrain", "--config", "recipes/03_pretrain/config_tiny.yaml",
                                 "--tokenizer_dir", str(tokenizer_dir), "--sources", "default", "--preset", "huge", *out,
                                 ok=False))
    assert "model preset 'huge' unknown" in line
    assert not (tmp_path / "out.tmp").exists()  # nothing was started, so nothing is left to clean up


def test_tensorboard_events_are_written(pretrained_dir):
    assert list((pretrained_dir / "runs").rglob("events.out.tfevents.*"))
