import subprocess
import sys

from hub_server import FakeHub
from huggingface_hub import ModelCard

from conftest import ROOT, recipe_env

SECRET = "hf_testtoken0123456789abcdefSECRET"


def _push(folder, endpoint, repo):
    code = (
        "import sys; from fromscratch.hub import push_folder; "
        f"print(push_folder({str(folder)!r}, {repo!r}))"
    )
    # A fresh process: huggingface_hub reads HF_ENDPOINT and HF_TOKEN at import time.
    env = recipe_env({"HF_ENDPOINT": endpoint, "HF_TOKEN": SECRET, "HF_HUB_OFFLINE": "0"})
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_push_reaches_loopback_hub_with_card_and_no_token(pretrained_dir):
    with FakeHub() as hub:
        proc = _push(pretrained_dir, hub.url, "me/tiny-model")
        assert proc.returncode == 0, proc.stderr[-3000:]
        files = hub.files["me/tiny-model"]
        assert "model.safetensors" in files and "config.json" in files
        card = ModelCard(files["README.md"].decode())
        results = card.data.eval_results
        assert {r.metric_type for r in results} >= {"eval_loss", "bits_per_byte", "perplexity"}
        assert not any(name.startswith("checkpoint-") for name in files)
        # The token authenticates requests but is never inside anything uploaded.
        assert any(SECRET in str(h.get("authorization", h.get("Authorization", ""))) for _, _, h, _ in hub.requests)
        assert all(SECRET.encode() not in content for content in files.values())
        assert "commit" in proc.stdout


def test_push_failure_is_one_line(pretrained_dir):
    proc = _push(pretrained_dir, "http://127.0.0.1:9", "me/tiny-model")  # nothing listens on port 9
    assert proc.returncode != 0
    assert "push to the Hub failed for 'me/tiny-model'" in proc.stderr


def test_recipe_push_never_writes_the_token(tmp_path):
    """--push_to_hub from a recipe, token in the environment: it authenticates, and appears in no file or log."""
    from conftest import run_recipe

    out = tmp_path / "tok"
    with FakeHub() as hub:
        proc = run_recipe("02_tokenizer", "--sources", "default:us_speeches", "--vocab_size", "300",
                          "--output_dir", str(out), "--push_to_hub", "true", "--hub_model_id", "me/tok",
                          env={"HF_ENDPOINT": hub.url, "HF_TOKEN": SECRET, "HF_HUB_OFFLINE": "0"})
        assert "tokenizer.json" in hub.files["me/tok"] and "README.md" in hub.files["me/tok"]
    assert SECRET not in proc.stdout + proc.stderr
    for f in out.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
