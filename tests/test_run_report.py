"""make report (fromscratch.run_report): every finished stage's figures on one page, the missing ones named."""

from __future__ import annotations

import json
import re

from fromscratch import run_report


def test_the_report_shows_a_finished_stage_and_names_the_ones_that_did_not_run(pretrained_dir, tmp_path):
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    (outputs / "03_pretrain").symlink_to(pretrained_dir)
    (outputs / "04_sft.tmp").mkdir()  # a cut run: not finished, and said so
    missing = run_report.write(outputs)
    assert "03_pretrain" not in missing and {"01_data", "04_sft", "07_eval"} <= set(missing)
    text = (outputs / "report.md").read_text()
    metrics = json.loads((pretrained_dir / "run_info.json").read_text())["metrics"]
    row = re.search(r"\| bits per byte \| ([\d.,]+) \|", text)
    assert row and abs(float(row.group(1)) - metrics["bits_per_byte"]) < 1e-4
    assert "[card](03_pretrain/README.md)" in text and "Run `make data`" in text
    assert "`04_sft` not finished" in text
    html = (outputs / "report.html").read_text()
    assert "<table>" in html and "03_pretrain/README.md" in html


def test_eval_accuracy_carries_its_standard_error():
    assert abs(run_report.stderr(0.5, 101) - 0.05) < 1e-12
    assert run_report.stderr(0.3, 1) is None
