"""Hostile input, tried systematically (issue 21), in five classes:

1. silent damage: a bad byte or a broken row costs only itself, counted at file:line; a key that makes an
   unusable output fails at start;
2. results that mean nothing (identical preference pairs, max_steps 0) are refused or counted and carded;
3. a failed run leaves nothing that looks finished, and --overwrite never touches what is not ours;
4. every piece of advice in an error names a key the stage has, and followed, works;
5. no traceback as the message where the value could be checked before any work.

The recipe runs (class 4, and one per stage family for class 1/5) are marked slow like the suite's others.
"""

from __future__ import annotations

import ast
import codecs
import dataclasses
import errno
import importlib.util
import json
import re
import sys
from pathlib import Path

import datasets
import pytest

from conftest import ROOT, error_line, run_recipe
from fromscratch import artifacts, sources
from fromscratch.alignment.chat_data import check_preferences, load_sources
from fromscratch.config import UserError, checks_of, cli, parse
from fromscratch.data import mix
from fromscratch.data.stats import StepStats

_MODULES: dict[str, object] = {}


def recipe(name: str):
    """A recipe's run.py as a module (its argument dataclasses), imported once; `stage/script.py` names another
    script of a stage (06_rlhf has one per algorithm family)."""
    if name not in _MODULES:
        path = ROOT / "recipes" / (name if name.endswith(".py") else f"{name}/run.py")
        spec = importlib.util.spec_from_file_location("recipe_" + name.replace("/", "_").replace(".", "_"), path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        _MODULES[name] = mod
    return _MODULES[name]


# Every script a user runs: each stage's run.py, and 06_rlhf's online.py (GRPO, RLOO) and dpo.py.
SCRIPTS = sorted({*(ROOT / "recipes").glob("*/run.py"), *(ROOT / "recipes" / "06_rlhf").glob("*.py")})


def _name(script: Path) -> str:
    return script.parent.name if script.name == "run.py" else f"{script.parent.name}/{script.name}"


def _rows(path: Path, texts: list[str]) -> None:
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")


# --- 1. silent damage --------------------------------------------------------------------------------------

VALID = [f"Row {i}: naïve café, Ελληνικά, 日本語, “quoted” — fine." for i in range(196)]


def test_one_invalid_byte_damages_only_its_own_line(tmp_path):
    p = tmp_path / "crawl.jsonl"
    lines = [json.dumps({"text": t}, ensure_ascii=False).encode() for t in VALID]
    lines.insert(98, b'{"text": "caf\xe9 in Latin-1"}')  # line 99: one byte that is not UTF-8
    p.write_bytes(b"\n".join(lines) + b"\n")
    docs, lineage = sources.load_documents(str(p))
    assert docs[:98] + docs[99:] == VALID  # no neighbour turned into mojibake
    assert docs[98] == "café in Latin-1"  # the bad line itself repaired (cp1252)
    assert lineage.repaired_lines == 1 and lineage.repaired_encoding == [f"{p}:99"]
    assert f"{p}:99" in lineage.summary() and "1 lines not UTF-8" in lineage.summary()


def test_text_file_with_one_latin1_line_keeps_the_others(tmp_path):
    p = tmp_path / "letter.txt"
    p.write_bytes("Grüße aus Köln — “hello”\n".encode() + "señor\n".encode("latin-1") + "日本語\n".encode())
    (doc,), lineage = sources.load_documents(str(p))
    assert doc == "Grüße aus Köln — “hello”\nseñor\n日本語"
    assert lineage.repaired_encoding == [f"{p}:2"]


@pytest.mark.parametrize("name,raw,expected", [
    ("bom.jsonl", codecs.BOM_UTF8 + b'{"text": "first"}\n{"text": "second"}\n', ["first", "second"]),
    ("crlf.jsonl", b'{"text": "a"}\r\n{"text": "b"}\r\n', ["a", "b"]),
    ("utf16.txt", "UTF-16 text: ÿ 日本".encode("utf-16"), ["UTF-16 text: ÿ 日本"]),
    ("sep.jsonl", '{"text": "one\u2028two\u0085three"}\n{"text": "next"}\n'.encode(), ["one\u2028two\u0085three",
                                                                                      "next"]),
    ("escaped_nul.jsonl", b'{"text": "nul \\u0000 escaped"}\n', ["nul \x00 escaped"]),
])
def test_encodings_and_line_ends_are_read_not_skipped(tmp_path, name, raw, expected):
    p = tmp_path / name
    p.write_bytes(raw)
    docs, lineage = sources.load_documents(str(p))
    assert docs == expected and not lineage.skipped and not lineage.repaired_lines


def test_raw_nul_truncated_last_row_and_huge_line_are_located(tmp_path):
    p = tmp_path / "d.jsonl"
    huge = "word " * 400_000  # a 2 MB row
    p.write_bytes(b'{"text": "ok"}\n{"text": "raw \x00 nul"}\n' + json.dumps({"text": huge}).encode()
                  + b'\n{"text": "cut by a full di')
    docs, lineage = sources.load_documents(str(p))
    assert docs == ["ok", huge]
    assert sum(lineage.skipped.values()) == 2
    assert [e.split(": ")[0] for e in lineage.skipped_examples] == [f"{p}:2", f"{p}:4"]


def test_empty_inputs_fail_in_one_line(tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "blank.txt").write_text("\n\n  \n")
    (tmp_path / "nothing").mkdir()
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / ".DS_Store").write_bytes(b"\x00\x01")
    for spec, msg in (("empty.jsonl", "no usable documents"), ("blank.txt", "no usable documents"),
                      ("nothing", "data path is empty"), ("hidden", "data path is empty")):
        with pytest.raises(UserError, match=msg):
            sources.load_documents(str(tmp_path / spec))


def test_hidden_files_beside_data_are_ignored(tmp_path):
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x01\x02")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    assert sources.load_documents(str(tmp_path))[0] == ["alpha"]


def test_wrong_column_name_says_which_fields_there_are(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"content": "a", "id": 1}\n{"content": "b", "id": 2}\n')
    with pytest.raises(UserError) as err:
        sources.load_documents(str(p))
    assert "content" in str(err.value) and "text_column" in str(err.value)
    assert sources.load_documents(str(p), "content")[0] == ["a", "b"]  # the advice works
    ds = datasets.Dataset.from_dict({"body": ["x"]})
    ds.to_parquet(str(tmp_path / "d.parquet"))
    with pytest.raises(UserError, match="no column 'text' \\(columns: body\\)"):
        sources.load_documents(str(tmp_path / "d.parquet"))


def test_csv_with_bom_and_broken_csv(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes(codecs.BOM_UTF8 + b"text,id\nhello there,1\n")
    assert sources.load_documents(str(p))[0] == ["hello there"]  # not a column named '\ufefftext'
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(UserError, match="cannot read as parquet"):
        sources.load_documents(str(bad))


def test_folder_of_mixed_kinds_gives_advice_that_works(tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.txt").write_text("plain text document")
    (mixed / "b.json").write_text('[{"text": "json document"}]')
    with pytest.raises(UserError) as err:
        sources.load_documents(str(mixed))
    msg = str(err.value)
    assert "cannot read" not in msg and "own folder" in msg  # .txt and .json are both readable: say so
    for name, suffix in (("texts", ".txt"), ("jsons", ".json")):  # followed: one folder per kind
        (tmp_path / name).mkdir()
        (mixed / f"{'a' if suffix == '.txt' else 'b'}{suffix}").rename(tmp_path / name / f"x{suffix}")
    corpus, _ = sources.load_corpus([str(tmp_path / "texts"), str(tmp_path / "jsons")])
    assert sorted(corpus["text"]) == ["json document", "plain text document"]
    (tmp_path / "texts" / "notes.xyz").write_text("?")
    with pytest.raises(UserError, match=r"cannot read files of type \.xyz \(readable:"):
        sources.load_documents(str(tmp_path / "texts"))


def test_damaged_save_to_disk_folder_is_one_line(tmp_path):
    saved = tmp_path / "saved"
    datasets.Dataset.from_dict({"text": ["a", "b"]}).save_to_disk(str(saved))
    for f in saved.glob("*.arrow"):
        f.write_bytes(b"")  # cut by a full disk
    with pytest.raises(UserError, match="cannot load this save_to_disk folder"):
        sources.load_documents(str(saved))


def _parse_error(types_, argv) -> str:
    with pytest.raises(UserError) as err:
        parse(types_, argv)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_data_keys_that_make_an_unusable_output_fail_at_start(tmp_path):
    mod = recipe("01_data")
    types_ = (mod.DataArguments, mod.CleanArguments, mod.FilterArguments, mod.DedupArguments)
    assert "command line: total_chars must be >= 1, got -5" in _parse_error(types_, ["--total_chars", "-5"])
    assert "validation_fraction must be > 0" in _parse_error(types_, ["--validation_fraction", "0"])
    cfg = tmp_path / "c.yaml"
    cfg.write_text("weights: [1.0, .nan]\nsources: [a, b]\n")
    assert _parse_error(types_, ["--config", str(cfg)]) == f"{cfg}: weights must be >= 0, got nan"
    cfg.write_text("unicode_form: NFX\n")
    assert f"{cfg}: unicode_form must be one of" in _parse_error(types_, ["--config", str(cfg)])
    cfg.write_text("near_threshold: 0\n")
    assert "near_threshold must be > 0 and <= 1" in _parse_error(types_, ["--config", str(cfg)])
    # the command line wins over the YAML: a bad YAML value overridden by a good one is fine
    cfg.write_text("total_chars: -5\n")
    (args, *_) = parse(types_, ["--config", str(cfg), "--total_chars", "1000"])
    assert args.total_chars == 1000
    assert parse(types_, ["--max_bad_words", "-1"])[2].max_bad_words == -1  # a declared sentinel stays valid


def test_mix_and_hold_out_never_write_an_empty_split():
    with pytest.raises(UserError, match="held out for validation"):
        mix.hold_out(["a", "b"], ["a", "b"], 0.1, 0)  # one document per source: nothing to hold out
    with pytest.raises(UserError, match="total_chars is smaller than any document"):
        mix.report([mix.MixPlan("a", 1.0, 1, 10, 0.1)], [], ["a"], ["0123456789"], {"a": "x"})


# --- 2. results that mean nothing --------------------------------------------------------------------------

def test_identical_preference_pairs_are_dropped_counted_and_carded(tmp_path):
    p = tmp_path / "pairs.jsonl"
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(6)]
    rows[2]["rejected"] = rows[2]["chosen"]
    rows[4]["rejected"] = rows[4]["chosen"]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data, (lineage,) = load_sources([str(p)], check_preferences)
    assert len(data) == 4 and all(c != r for c, r in zip(data["chosen"], data["rejected"]))
    assert lineage.skipped == {"chosen equals rejected": 2} and lineage.documents == 4
    assert lineage.skipped_examples == [f"{p}: row 3: chosen equals rejected", f"{p}: row 5: chosen equals rejected"]
    from jinja2 import Environment

    for template in ("reward.md.jinja", "rlhf.md.jinja"):  # the cards of the stages that train on pairs
        text = (ROOT / "model_cards" / template).read_text()
        start = text.index("{% for l in lineage if l.skipped %}")
        block = text[start:text.index(".\n{% endfor %}", start) + 14]
        shown = Environment().from_string(block).render(lineage=[lineage])
        assert "2 (chosen equals rejected)" in shown and "row 3" in shown, template
    every = tmp_path / "same.jsonl"
    every.write_text(json.dumps({"chosen": "x", "rejected": "x"}) + "\n")
    with pytest.raises(UserError, match="every pair \\(1\\) has chosen equal to rejected"):
        load_sources([str(every)], check_preferences)


@pytest.mark.parametrize("bad,where", [
    (b'[1, 2]', "2: a JSON list, not an object of columns"),
    (b'{"messages": [{"role": "user", "content": "caf\xe9"}]}', "2: not UTF-8"),
    (b'{"messages": [', "2: not JSON"),
])
def test_chat_jsonl_that_the_loader_refuses_names_its_line(tmp_path, bad, where):
    """datasets' json loader refuses the whole file with "An error occurred while generating the dataset": the
    post-training stages (04-06) fail on a malformed row by design, so the line and the fix must be in the message."""
    from fromscratch.alignment.chat_data import check_sft

    good = json.dumps({"messages": [{"role": "user", "content": "Hi"},
                                    {"role": "assistant", "content": "Hello."}]}).encode()
    p = tmp_path / "chat.jsonl"
    p.write_bytes(b"\n".join([good, bad, good]) + b"\n")
    with pytest.raises(UserError, match=f"^{re.escape(str(p))}:{re.escape(where)}.*fix or remove this line"):
        load_sources([str(p)], check_sft)
    p.write_bytes(b"\n".join([good, good]) + b"\n")  # the line removed, as advised: it loads
    assert len(load_sources([str(p)], check_sft)[0]) == 2


@pytest.mark.parametrize("stage,cls", [("03_pretrain", "PretrainArguments"), ("04_sft", "SFTArguments"),
                                       ("05_reward", "RewardArguments"), ("06_rlhf/dpo.py", "DPOArguments"),
                                       ("06_rlhf/online.py", "GRPOArguments")])
def test_every_trainer_stage_refuses_meaningless_training_keys(tmp_path, stage, cls):
    types_ = (getattr(recipe(stage), cls),)
    out = ["--output_dir", str(tmp_path / "o")]
    for argv, expect in ((["--max_steps", "0"], "max_steps must be >= 1 or -1"),
                         (["--max_steps", "-7"], "max_steps must be >= 1 or -1"),
                         (["--per_device_train_batch_size", "0"], "per_device_train_batch_size must be >= 1"),
                         (["--learning_rate", "-0.001"], "learning_rate must be > 0"),
                         (["--learning_rate", "nan"], "learning_rate must be > 0"),
                         (["--precision", "fp8"], "precision must be one of")):
        assert _parse_error(types_, argv + out).startswith(f"command line: {expect}"), argv
    (args,) = parse(types_, ["--max_steps", "-1", "--use_cpu", "true"] + out)  # -1: the library's "use epochs"
    assert args.max_steps == -1


def test_every_shipped_config_is_inside_its_declared_ranges():
    import yaml

    checked = 0
    for run in SCRIPTS:
        mod = recipe(_name(run))
        types_ = [v for v in vars(mod).values() if isinstance(v, type) and dataclasses.is_dataclass(v)]
        for cfg in sorted(run.parent.glob("*.yaml")):
            data = yaml.safe_load(cfg.read_text()) or {}
            for tp in types_:
                from fromscratch.config import problems

                assert not problems(data, checks_of(tp)), (cfg, tp.__name__)
                checked += 1
    assert checked > 30


# --- 3. a failed run leaves nothing that looks finished; overwrite touches only our outputs ----------------

def test_overwrite_never_touches_a_regular_file(tmp_path):
    user_file = tmp_path / "notes.txt"
    user_file.write_text("precious")
    with pytest.raises(UserError, match="is a file, not a folder"):
        artifacts.prepare(user_file, overwrite=True)
    assert user_file.read_text() == "precious" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    (tmp_path / "out.tmp").write_text("also a file")
    with pytest.raises(UserError, match="out.tmp is a file"):
        artifacts.prepare(tmp_path / "out", overwrite=True)


def test_overwrite_never_touches_a_folder_that_is_not_ours(tmp_path):
    for name in ("photos", "photos.tmp"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "cat.jpg").write_bytes(b"\xff\xd8")
        with pytest.raises(UserError, match="not an (unfinished run|output) of this project"):
            artifacts.prepare(tmp_path / "photos", overwrite=True, resume=False)
        assert (tmp_path / name / "cat.jpg").read_bytes() == b"\xff\xd8"
        (tmp_path / name / "cat.jpg").rename(tmp_path / f"{name}.jpg")
    (tmp_path / "empty").mkdir()  # an empty folder holds nothing to lose: usable as is
    tmp = artifacts.prepare(tmp_path / "empty")
    (tmp / artifacts.FINISHED_MARKER).write_text("{}")
    (tmp / "plan.json").write_text("{}")
    artifacts.finish(tmp, tmp_path / "empty")
    assert artifacts.is_finished(tmp_path / "empty")
    assert not (tmp_path / "empty" / artifacts.IN_PROGRESS_MARKER).exists()  # the marker is not published


def test_finish_never_deletes_a_neighbouring_old_folder(tmp_path):
    out = tmp_path / "out"
    for version in ("v1", "v2"):
        tmp = artifacts.prepare(out, overwrite=True)
        (tmp / "model.bin").write_text(version)
        (tmp / artifacts.FINISHED_MARKER).write_text("{}")
        (tmp_path / "out.old").mkdir(exist_ok=True)  # the user's folder that happens to have that name
        (tmp_path / "out.old" / "keep.txt").write_text("mine")
        artifacts.finish(tmp, out)
    assert (out / "model.bin").read_text() == "v2" and (tmp_path / "out.old" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.old"]


def _cli_run(main, capsys) -> str:
    with pytest.raises(SystemExit) as code:
        cli(main)()
    assert code.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    return err.strip()


def test_a_run_that_fails_before_writing_leaves_no_tmp_and_no_output(tmp_path, capsys):
    out = tmp_path / "out"

    def early():
        artifacts.prepare(out)
        raise UserError("too little text for block_size 256")

    assert _cli_run(early, capsys) == "error: too little text for block_size 256"
    assert not out.exists() and not artifacts.tmp_dir(out).exists()


def test_full_disk_and_read_only_output_are_one_line_with_advice(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"

    def full_disk():
        tmp = artifacts.prepare(out)
        (tmp / "part.arrow").write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp / "model.safetensors"))

    line = _cli_run(full_disk, capsys)
    assert "model.safetensors: No space left on device" in line and "free some space" in line
    assert "pass --overwrite true to start over" in line and "--resume" not in line.split("no --resume")[0]
    assert not out.exists() and not artifacts.is_finished(artifacts.tmp_dir(out))
    tmp = artifacts.prepare(out, overwrite=True)  # the advice, followed
    assert not (tmp / "part.arrow").exists()

    def refuse(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "ro.tmp"))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(UserError, match=r"output_dir: cannot write in .* \(Permission denied\): set output_dir"):
        artifacts.prepare(tmp_path / "ro")

    monkeypatch.undo()

    def unreadable_source():
        artifacts.prepare(tmp_path / "fresh")
        raise PermissionError(errno.EACCES, "Permission denied", "/data/corpus.jsonl")

    line = _cli_run(unreadable_source, capsys)  # nothing written yet: no advice about an unfinished run
    assert line == "error: /data/corpus.jsonl: Permission denied (fix the path or its permissions, then rerun)"
    assert not artifacts.tmp_dir(tmp_path / "fresh").exists()

    def bug():
        raise FileNotFoundError(errno.ENOENT, "No such file", "our own bug")

    with pytest.raises(FileNotFoundError):  # not the user's disk: the traceback stays for us
        cli(bug)()


def test_ctrl_c_is_one_line_with_the_restart_advice(tmp_path, capsys):
    out = tmp_path / "out"

    def interrupted(write: bool):
        tmp = artifacts.prepare(out, resume=False)
        if write:
            (tmp / "checkpoint-2").mkdir()
        raise KeyboardInterrupt

    for write in (False, True):
        with pytest.raises(SystemExit) as code:
            cli(lambda: interrupted(write))()
        assert code.value.code == 130
        err = capsys.readouterr().err.strip()
        assert "Traceback" not in err and len(err.splitlines()) == 1
    assert err == f"interrupted; the unfinished run stays in {artifacts.tmp_dir(out)}: pass --resume true to " \
                  "continue it, or --overwrite true to start over"
    assert not out.exists() and (artifacts.tmp_dir(out) / "checkpoint-2").is_dir()
    tmp = artifacts.prepare(out, resume=True)  # the advice, followed
    assert (tmp / "checkpoint-2").is_dir()


def test_full_disk_said_by_rust_or_torch_writers_is_one_line(tmp_path, capsys, monkeypatch):
    """tokenizers and safetensors raise a plain Exception whose text ends "(os error 28)"; torch.save loses the
    errno ("unexpected pos"): measured on a 200 KB / 3 MB / 9 MB tmpfs, each was a traceback."""
    out = tmp_path / "out"

    def rust_writer():
        (artifacts.prepare(out) / "tokenizer.json").write_text("{half")
        raise Exception("No space left on device (os error 28)")

    line = _cli_run(rust_writer, capsys)
    assert line.startswith(f"error: {artifacts.tmp_dir(out)}: No space left on device (free some space")
    assert "pass --overwrite true to start over" in line

    def file_size_limit():  # `ulimit -f`: safetensors' text for EFBIG
        artifacts.prepare(out, overwrite=True)
        raise RuntimeError("Error while serializing: I/O error: File too large (os error 27)")

    assert "File too large (raise the file-size limit (ulimit -f)" in _cli_run(file_size_limit, capsys)

    def torch_writer():
        artifacts.prepare(out, overwrite=True)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 2106496 vs 2106384")

    class Full:
        f_bavail, f_frsize = 3, 4096

    monkeypatch.setattr("os.statvfs", lambda path: Full)
    line = _cli_run(torch_writer, capsys)
    assert "No space left on device (12 KiB free; RuntimeError: [enforce fail" in line, line
    Full.f_bavail = 1 << 30  # the same error with space to spare is a bug of ours: its traceback stays
    with pytest.raises(RuntimeError, match="unexpected pos"):
        cli(torch_writer)()


def test_parquet_cut_short_is_one_line_naming_the_file_before_any_task(tmp_path):
    from fromscratch.data import reading

    folder = tmp_path / "data"  # a data-stage output whose shard was cut by a full disk or a partial copy
    (folder / "train").mkdir(parents=True)
    (folder / "validation").mkdir()
    good = datasets.Dataset.from_dict({"text": [f"row {i} of a shard" for i in range(50)]})
    good.to_parquet(str(folder / "validation" / "00000.parquet"))
    good.to_parquet(str(tmp_path / "whole.parquet"))
    data = (tmp_path / "whole.parquet").read_bytes()
    (folder / "train" / "00000.parquet").write_bytes(data[: len(data) // 2])
    (folder / "run_info.json").write_text("{}")
    shard = folder / "train" / "00000.parquet"
    for load in (lambda: sources.load_documents(str(folder)),  # stages 02-03 (in memory)
                 lambda: reading.list_units([str(folder)], "text"),  # stage 01 (datatrove), at listing
                 lambda: reading.list_units([str(shard)], "text")):
        with pytest.raises(UserError, match=rf"^{re.escape(str(shard))}: cannot read as parquet, cut short"):
            load()
    assert sources.load_documents(str(tmp_path / "whole.parquet"))[0] == list(good["text"])  # a whole one reads


def test_resume_passes_over_a_damaged_checkpoint_and_says_so(tmp_path, capsys):
    import torch
    from safetensors.torch import save_file

    for step in (10, 20, 30):
        ckpt = tmp_path / f"checkpoint-{step}"
        ckpt.mkdir()
        save_file({"w": torch.zeros(64, 64)}, str(ckpt / "model.safetensors"))
        torch.save({"state": {}}, ckpt / "optimizer.pt")
        (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    raw = (tmp_path / "checkpoint-30" / "model.safetensors").read_bytes()
    (tmp_path / "checkpoint-30" / "model.safetensors").write_bytes(raw[: len(raw) // 2])  # a full disk
    (tmp_path / "checkpoint-20" / "optimizer.pt").write_bytes(b"")  # an interrupted copy
    assert artifacts.newest_checkpoint(tmp_path).name == "checkpoint-10"
    said = capsys.readouterr().out
    assert "checkpoint-30 skipped: model.safetensors is damaged" in said
    assert "checkpoint-20 skipped: optimizer.pt is damaged" in said
    with pytest.raises(UserError, match="no readable config.json: pass --overwrite true"):
        artifacts.check_checkpoint_shape(tmp_path / "checkpoint-10", None)


# --- 4. advice that works -----------------------------------------------------------------------------------

def _recipe_keys(name: str) -> set[str]:
    mod = recipe(name)
    return {f.name for v in vars(mod).values() if isinstance(v, type) and dataclasses.is_dataclass(v)
            for f in dataclasses.fields(v)}


def test_every_flag_an_error_message_advises_is_a_key_of_that_stage():
    seen = 0
    for run in SCRIPTS:
        keys = _recipe_keys(_name(run))
        for node in ast.walk(ast.parse(run.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and \
                    getattr(node.exc.func, "id", "") == "UserError":
                text = " ".join(c.value for c in ast.walk(node.exc) if isinstance(c, ast.Constant)
                                and isinstance(c.value, str))
                for flag in re.findall(r"--(\w+)", text):
                    assert flag in keys, (_name(run), flag, text)
                    seen += 1
    assert seen >= 5  # the check reads real messages
    stages_with_resume = {r.parent.name for r in (ROOT / "recipes").glob("*/run.py")
                          if "resume" in _recipe_keys(r.parent.name)}
    # the tokenizer has no --resume (its advice must not name one); the data stage resumes its datatrove tasks
    assert "02_tokenizer" not in stages_with_resume and "01_data" in stages_with_resume


def test_every_make_target_named_in_advice_exists():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    named = set()
    for f in [*(ROOT / "src").rglob("*.py"), *SCRIPTS]:
        named |= set(re.findall(r"run `make (\w[\w-]*)", f.read_text()))
        named |= {m for m in re.findall(r"check_parent\([^,]+, \"([\w-]+)\"\)", f.read_text())}
        named |= {m for m in re.findall(r"load_tokenizer\([^)]*\"([\w-]+)\"\)", f.read_text())}
    assert named and named <= targets, named - targets


def test_zero_byte_tokenizer_is_one_line(tmp_path):
    (tmp_path / "tokenizer.json").write_bytes(b"")
    with pytest.raises(UserError, match=r"tokenizer_dir: cannot load the tokenizer in .*rerun `make tokenizer`"):
        artifacts.load_tokenizer(str(tmp_path), "tokenizer_dir", "tokenizer")
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(UserError, match="no tokenizer in"):
        artifacts.load_tokenizer(str(tmp_path), "tokenizer_dir", "tokenizer")


def _small_corpus(path: Path) -> Path:
    import random

    rng = random.Random(0)
    words = ("alpha beta gamma delta river mountain city council harvest winter summer market bridge tower "
             "garden library school letter").split()
    _rows(path, [" ".join(rng.choice(words) for _ in range(60)) + ". The town is quiet and the end is near."
                 for _ in range(40)])
    return path


def _follow(line: str) -> list[str]:
    """The `--key value` pairs an error line tells the user to pass (the first alternative)."""
    advice = line.split("pass ", 1)[1]
    return [tok for pair in re.findall(r"--(\w+) (\w+)", advice.split(", or ")[0]) for tok in (f"--{pair[0]}", pair[1])]


@pytest.mark.slow
@pytest.mark.parametrize("stage,extra", [
    ("01_data", ["--config", "recipes/01_data/config_tiny.yaml", "--weights", "1", "--toxicity_threshold", "-1"]),
    ("02_tokenizer", ["--config", "recipes/02_tokenizer/config_tiny.yaml", "--vocab_size", "300"]),
])
def test_partial_tmp_advice_followed_works(tmp_path, stage, extra):
    corpus = _small_corpus(tmp_path / "small.jsonl")
    out = tmp_path / "out"
    args = [*extra, "--sources", str(corpus), "--output_dir", str(out)]
    tmp = artifacts.tmp_dir(out)  # what a kill -9 or a full disk leaves: the marker and a half-written file
    tmp.mkdir()
    (tmp / artifacts.IN_PROGRESS_MARKER).write_text("")
    (tmp / "half.arrow").write_bytes(b"\x00" * 10)
    line = error_line(run_recipe(stage, *args, ok=False))
    # the data stage resumes its finished datatrove tasks; the tokenizer has no --resume and must not advise one
    assert "unfinished run" in line and ("--resume" in line.replace("no --resume", "")) == (stage == "01_data")
    run_recipe(stage, *args, *_follow(line))
    assert artifacts.is_finished(out) and not tmp.exists()
    # the input file given as output_dir, with the --overwrite an earlier message advised: refused, untouched
    line = error_line(run_recipe(stage, *extra, "--sources", str(corpus), "--output_dir", str(corpus),
                                 "--overwrite", "true", ok=False))
    assert f"output_dir {corpus} is sources {corpus}" in line and "which this run reads" in line
    assert corpus.read_text().count("\n") == 40
    assert not artifacts.tmp_dir(corpus).exists()


# --- 5. no traceback as the message --------------------------------------------------------------------------

@pytest.mark.slow
def test_data_stage_whose_documents_are_all_filtered_is_one_line(tmp_path):
    corpus = _small_corpus(tmp_path / "small.jsonl")
    out = tmp_path / "out"
    line = error_line(run_recipe("01_data", "--config", "recipes/01_data/config_tiny.yaml", "--sources", str(corpus),
                                 "--weights", "1", "--toxicity_threshold", "-1", "--min_words", "1000",
                                 "--output_dir", str(out), ok=False))
    assert "step 'filter' dropped all 40 documents (40 too few words)" in line
    assert not out.exists() and not artifacts.tmp_dir(out).exists()  # nothing that looks like an output


def test_step_that_drops_everything_stops_with_its_reasons():
    stats = StepStats()
    stats.record("load", ["a", "a"], ["", ""])
    stats.record("decontaminate", ["a", "a"], ["13-gram overlap", "13-gram overlap"])  # one task's share: fine
    with pytest.raises(UserError, match=r"step 'decontaminate' dropped all 2 documents \(2 13-gram overlap\)"):
        stats.check_not_emptied()  # the whole corpus's books: the run stops


@pytest.mark.parametrize("stage,classes,argv,expect", [
    ("00_plan", "PlanArguments", ["--compute_flops", "0"], "compute_flops must be > 0"),
    ("00_plan", "PlanArguments", ["--compute_flops", "inf"], "compute_flops must be > 0"),
    ("02_tokenizer", "TokenizerArguments", ["--min_frequency", "-1"], "min_frequency must be >= 0"),
    ("02_tokenizer", "TokenizerArguments", ["--heldout_fraction", "1"], "heldout_fraction must be >= 0 and < 1"),
    ("03_pretrain", "DataArguments", ["--block_size", "0"], "block_size must be >= 1"),
    ("03_pretrain", "ModelArguments", ["--dropout", "1.5"], "dropout must be >= 0 and < 1"),
    ("03_pretrain", "SpikeGuardArguments", ["--spike_window", "0"], "spike_window must be >= 1"),
    ("04_sft", "LoraArguments", ["--lora_r", "0"], "lora_r must be >= 1"),
    ("05_reward", "DataArguments", ["--validation_fraction", "1"], "validation_fraction must be > 0 and < 1"),
    ("07_eval", "EvalArguments", ["--batch_size", "0"], "batch_size must be >= 1"),
    ("00_plan", "PlanArguments", ["--compute_flops", "-1e20"], "compute_flops must be > 0"),  # not taken for a flag
    # GRPOConfig.__post_init__ divides by num_generations: checked before it runs (was a ZeroDivisionError)
    ("06_rlhf/online.py", "OnlineArguments GRPOArguments", ["--num_generations", "0"], "num_generations must be >= 2"),
    ("06_rlhf/online.py", "OnlineArguments RLOOArguments", ["--num_generations=1"], "num_generations must be >= 2"),
    # PPO with 0 episodes trained nothing and published a policy with reward None
    ("06_rlhf", "PPOPromptArguments PPOArguments", ["--total_episodes", "0"], "total_episodes must be >= 1"),
    ("06_rlhf", "PPOPromptArguments PPOArguments", ["--num_ppo_epochs", "0"], "num_ppo_epochs must be >= 1"),
    ("01_data", "DataArguments", ["--weights", "0.5", "nan"], "weights must be >= 0, got nan"),
    ("04_sft", "DataArguments", ["--flan_exemplars", "-1"], "flan_exemplars must be >= 0"),
    ("07_eval", "EvalArguments", ["--toxicity_steering", "blok"], "toxicity_steering must be one of 'none', 'block'"),
    ("07_eval", "EvalArguments", ["--completion_max_new_tokens", "0"], "completion_max_new_tokens must be >= 1"),
    ("07_eval", "ProbeArguments", ["--toxicity_max_new_tokens", "0"], "toxicity_max_new_tokens must be >= 1"),
])
def test_values_checkable_at_start_are_checked_at_start(stage, classes, argv, expect):
    types_ = tuple(getattr(recipe(stage), c) for c in classes.split())
    assert _parse_error(types_, argv).startswith(f"command line: {expect}")


@pytest.mark.slow
@pytest.mark.parametrize("case,expect", [
    ("mixed", "holds files of several kinds (.json, .txt)"),
    # the datatrove stage reads row by row in its tasks: every row is counted unreadable, naming the field
    ("wrong_column", "step 'load' dropped all 1 documents (1 unreadable row: no 'text' field)"),
    ("empty", "has weight 1.0 but no documents survived the filters"),
])
def test_data_stage_bad_sources_are_one_line_and_leave_nothing(tmp_path, case, expect):
    src = tmp_path / case
    if case == "mixed":
        src.mkdir()
        (src / "a.txt").write_text("text")
        (src / "b.json").write_text('[{"text": "json"}]')
    elif case == "wrong_column":
        src = tmp_path / "rows.jsonl"
        src.write_text('{"body": "a", "id": 1}\n')
    else:
        src = tmp_path / "empty.jsonl"
        src.write_bytes(b"")
    out = tmp_path / "out"
    line = error_line(run_recipe("01_data", "--config", "recipes/01_data/config_tiny.yaml", "--sources", str(src),
                                 "--weights", "1", "--output_dir", str(out), ok=False))
    assert expect in line
    assert not out.exists() and not artifacts.tmp_dir(out).exists()


@pytest.mark.slow
def test_pretrain_with_an_empty_tokenizer_file_is_one_line(tmp_path):
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "tokenizer.json").write_bytes(b"")
    out = tmp_path / "out"
    line = error_line(run_recipe("03_pretrain", "--config", "recipes/03_pretrain/config_tiny.yaml", "--sources",
                                 "default:tinyshakespeare", "--tokenizer_dir", str(tok), "--output_dir", str(out),
                                 ok=False))
    assert f"tokenizer_dir: cannot load the tokenizer in {tok}" in line and "make tokenizer" in line
    assert not out.exists() and not artifacts.tmp_dir(out).exists()
