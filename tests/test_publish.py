"""publish: the tail every stage shares (card, run record, atomic rename, [done], push)."""

from __future__ import annotations

import json
import time

from huggingface_hub import ModelCard

from fromscratch import artifacts, cards, hub, publish

TEMPLATE = "---\n{{ card_data }}\n---\n# {{ model_name }}\nload: {{ load_path }}\nloss: {{ metrics.eval_loss }}\n" \
           "extra: {{ extra }}\nseed: {{ config.seed }}\nversions: {{ versions.python }}\n"


def _publish(tmp_path, monkeypatch, **kw):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "t.md.jinja").write_text(TEMPLATE)
    monkeypatch.setattr(cards, "TEMPLATES", tmp_path / "templates")
    out = tmp_path / "out"
    tmp = artifacts.prepare(out)
    (tmp / "model.safetensors").write_bytes(b"weights")
    lineage = [{"spec": "default:tinyshakespeare", "resolved": "tinyshakespeare.txt", "sha256": "ab"}]
    done = publish.publish(tmp, str(out), stage="99_test", template="t.md.jinja", name="fromscratch-test",
                           card={"extra": "shown", "tags": ["test"]}, config={"seed": 7}, lineage=lineage,
                           metrics={"eval_loss": 1.5}, started=time.time() - 3, what="model",
                           parents=[{"spec": "outputs/03_pretrain", "role": "base_model"}], **kw)
    return out, tmp, done


def test_publish_writes_card_and_record_then_renames(tmp_path, monkeypatch, capsys):
    out, tmp, done = _publish(tmp_path, monkeypatch, summary="loss 2.0 -> 1.5")
    assert done == out and not tmp.exists() and (out / "model.safetensors").read_bytes() == b"weights"
    card = ModelCard.load(out / "README.md")
    assert card.data.model_name == "fromscratch-test" and card.data.datasets == ["karpathy/tiny_shakespeare"]
    assert "fromscratch" in card.data.tags and "test" in card.data.tags
    assert f"load: {out}\n" in card.text and "loss: 1.5" in card.text and "extra: shown" in card.text
    assert "seed: 7" in card.text and "versions: 3." in card.text
    info = json.loads((out / "run_info.json").read_text())
    assert info["stage"] == "99_test" and info["metrics"] == {"eval_loss": 1.5} and info["wall_seconds"] >= 3
    assert [x["spec"] for x in info["lineage"]] == ["default:tinyshakespeare", "outputs/03_pretrain"]
    assert not (out / artifacts.IN_PROGRESS_MARKER).exists()
    assert capsys.readouterr().out.splitlines() == [f"[done] model in {out}: loss 2.0 -> 1.5"]


def test_publish_names_the_hub_repo_and_pushes_only_when_asked(tmp_path, monkeypatch, capsys):
    pushed = []
    monkeypatch.setattr(hub, "push_folder", lambda folder, repo, private: pushed.append((folder, repo, private))
                        or "https://hub/commit/1")
    out, _, _ = _publish(tmp_path, monkeypatch, push=True, hub_model_id="me/model", private=1)
    card = ModelCard.load(out / "README.md")
    assert card.data.model_name == "me/model" and "load: me/model\n" in card.text
    assert pushed == [(out, "me/model", True)]
    assert capsys.readouterr().out.splitlines() == [f"[done] model in {out}", "[hub] https://hub/commit/1"]


def test_hub_id_without_push_pushes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(hub, "push_folder", lambda *a, **k: (_ for _ in ()).throw(AssertionError("pushed")))
    out, _, _ = _publish(tmp_path, monkeypatch, hub_model_id="me/model")
    assert capsys.readouterr().out.splitlines() == [f"[done] model in {out}"]


def test_metrics_line_rounds_floats_only_and_comes_from_rank_0(capsys):
    publish.print_metrics({"eval_loss": 1.0}, rank=1)
    assert capsys.readouterr().out == ""
    publish.print_metrics({"eval_loss": 1.234567, "steps": 40, "mix": None, "share": {"a": 0.123456}})
    line = capsys.readouterr().out.strip()
    assert line.startswith("[metrics] ")
    assert json.loads(line.removeprefix("[metrics] ")) == {"eval_loss": 1.2346, "steps": 40, "mix": None,
                                                           "share": {"a": 0.123456}}
