import json
import shutil
import subprocess
import sys

from hub_server import FakeHub
from huggingface_hub import ModelCard

from conftest import ROOT, recipe_env

SECRET = "hf_testtoken0123456789abcdefSECRET"


def _push(folder, endpoint, repo, cwd=ROOT):
    code = (
        "import sys; from fromscratch.hub import push_folder; "
        f"print(push_folder({str(folder)!r}, {repo!r}))"
    )
    # A fresh process: huggingface_hub reads HF_ENDPOINT and HF_TOKEN at import time.
    env = recipe_env({"HF_ENDPOINT": endpoint, "HF_TOKEN": SECRET, "HF_HUB_OFFLINE": "0"})
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=cwd, timeout=120)


def test_push_reaches_loopback_hub_with_card_and_no_token(pretrained_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(pretrained_dir, folder)  # a push records its repo in run_info.json: keep the fixture clean
    with FakeHub() as hub:
        proc = _push(folder, hub.url, "me/tiny-model")
        assert proc.returncode == 0, proc.stderr[-3000:]
        files = hub.files["me/tiny-model"]
        assert "model.safetensors" in files and "config.json" in files
        card = ModelCard(files["README.md"].decode())
        assert card.data.license == "apache-2.0" and card.data.language == ["en"] and "bits per byte" in card.text
        assert not any(name.startswith("checkpoint-") for name in files)
        # TensorBoard logs go up: the Hub's metrics tab reads runs/.
        assert any(name.startswith("runs/") and "tfevents" in name for name in files)
        # The token authenticates requests but is never inside anything uploaded.
        assert any(SECRET in str(h.get("authorization", h.get("Authorization", ""))) for _, _, h, _ in hub.requests)
        assert all(SECRET.encode() not in content for content in files.values())
        assert "commit" in proc.stdout
    assert json.loads((folder / "run_info.json").read_text())["hub"]["repo_id"] == "me/tiny-model"


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


def test_push_keeps_logs_and_parquet_shards_and_leaves_checkpoints(tmp_path):
    folder = tmp_path / "data"
    for name in ("train/00000.parquet", "validation/00000.parquet", "runs/x/events.out.tfevents.1", "README.md",
                 "checkpoint-5/model.safetensors", "part.tmp"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    with FakeHub() as hub:
        proc = _push(folder, hub.url, "me/data")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert set(hub.files["me/data"]) == {"train/00000.parquet", "validation/00000.parquet",
                                             "runs/x/events.out.tfevents.1", "README.md"}


def test_pushed_card_names_the_parent_by_its_hub_id_once_pushed(pretrained_dir, sft_dir, tmp_path):
    """A local parent is never a base_model; once the parent is pushed, the child's push names its repo."""
    from card_rules import problems

    parent, child = tmp_path / "03_pretrain", tmp_path / "04_sft"
    shutil.copytree(pretrained_dir, parent)
    shutil.copytree(sft_dir, child)
    info = json.loads((child / "run_info.json").read_text())
    recorded = [item for item in info["lineage"] if item.get("role") == "base_model"]
    assert [item["resolved"] for item in recorded] == [str(pretrained_dir.resolve())]  # the parent's absolute path
    for item in recorded:  # the copy stands for the fixture, named as `make sft` names it: relative to the checkout
        item["spec"], item["resolved"] = "outputs/03_pretrain", str(parent)
    (child / "run_info.json").write_text(json.dumps(info))
    elsewhere = tmp_path / "elsewhere"  # pushed from a directory without outputs/: no `outputs` user on the Hub
    elsewhere.mkdir()
    with FakeHub() as hub:
        assert _push(child, hub.url, "me/sft", cwd=elsewhere).returncode == 0
        assert ModelCard(hub.files["me/sft"]["README.md"].decode()).data.base_model is None
        assert _push(parent, hub.url, "me/base").returncode == 0
        assert json.loads((parent / "run_info.json").read_text())["hub"]["repo_id"] == "me/base"
        assert _push(child, hub.url, "me/sft", cwd=elsewhere).returncode == 0
        card = ModelCard(hub.files["me/sft"]["README.md"].decode())
    assert card.data.base_model == "me/base"
    assert problems(child) == []
