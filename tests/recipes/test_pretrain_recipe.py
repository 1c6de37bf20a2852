import json

from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline


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
