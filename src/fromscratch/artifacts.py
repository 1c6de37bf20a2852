"""Atomic stage outputs: work in `<out>.tmp`, rename to `<out>` only when everything is written.

A finished output is never half-written (a crash leaves `<out>.tmp`, which `--resume` continues where the stage
has it) and never overwritten by accident (`--overwrite` is the only way to replace one). `--overwrite` replaces
only what is ours: a finished output (it holds run_info.json) or an unfinished `<out>.tmp` (it holds the
in-progress marker); a regular file or a folder of someone else's files is never renamed or deleted.

A run holds an exclusive lock (filelock: an OS lock, released by the kernel when the process dies, however it
dies) on `<out>.tmp/.fromscratch-lock` for its whole life. Every path that would touch an existing `<out>.tmp`
(`--overwrite`, `--resume`, clearing an empty one) takes it first, so a second run into the same folder is
refused in one line and never deletes or writes into a live run.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from .config import UserError

FINISHED_MARKER = "run_info.json"  # written last by every stage, so its presence means "finished"
IN_PROGRESS_MARKER = ".fromscratch-unfinished"  # written first into <out>.tmp: "this folder is ours to replace"
LOCK = ".fromscratch-lock"  # in <out>.tmp: held by the run writing there
_BOOKKEEPING = {IN_PROGRESS_MARKER, LOCK}
_RECORDS = {FINISHED_MARKER, "README.md", "config.yaml", "requirements-frozen.txt"}  # about a result, not one
_held: dict = {}  # <out>.tmp -> the FileLock this process holds on it (kept referenced: released at exit)
_restart = ""  # how to restart the run now writing (config.cli adds it to a one-line I/O error)
_writing: Path | None = None  # the <out>.tmp this process prepared


def tmp_dir(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".tmp")


def is_finished(out: str | Path) -> bool:
    return (Path(out) / FINISHED_MARKER).is_file()


def _ours(tmp: Path) -> bool:
    # The marker, or what a run of an older version left: a checkpoint or a run record.
    return (tmp / IN_PROGRESS_MARKER).is_file() or is_finished(tmp) or any(tmp.glob("checkpoint-*"))


def restart_advice() -> str:
    return _restart if _writing is not None and _writing.exists() else ""


def _empty(tmp: Path) -> bool:
    return all(p.name in _BOOKKEEPING for p in tmp.iterdir())


def _take_lock(tmp: Path):
    """The lock of `tmp`, taken without waiting; a UserError when another live run holds it."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(tmp / LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise UserError(f"output_dir: another run is writing {tmp} now: wait for it to finish, or stop it first "
                        "(nothing was changed)") from None
    return lock


def abandon() -> None:
    """A run that stops on a user error before writing anything leaves no `<out>.tmp` behind (config.cli)."""
    if _writing is not None and _writing.is_dir() and _empty(_writing):
        shutil.rmtree(_writing, ignore_errors=True)


def prepare(out: str | Path, overwrite: bool = False, resume: bool | str | None = None) -> Path:
    """Check the output location before any work; return the temporary folder to write into.

    resume: None for a stage without a `--resume` key (its advice then never names one), else its value: True
    continues `<out>.tmp` (which must exist), "auto" continues it when it exists and starts fresh otherwise (a
    requeued job runs the same command every time), False refuses to touch it."""
    global _restart, _writing
    out = Path(out)
    tmp = tmp_dir(out)
    if tmp.is_dir() and tmp not in _held and (_ours(tmp) or _empty(tmp)):
        _held[tmp] = _take_lock(tmp)  # before anything is decided on it: a live run's folder is never touched
    again = ("--resume true to continue it, or --overwrite true to start over" if resume is not None
             else "--overwrite true to start over (this stage has no --resume: it runs again from the start)")
    for path in (out, tmp):
        if path.exists() and not path.is_dir():
            raise UserError(f"output_dir: {path} is a file, not a folder: choose another output_dir (nothing was "
                            "changed; --overwrite never replaces a file that is not one of our outputs)")
    if out.exists() and any(out.iterdir()):
        if not is_finished(out):
            raise UserError(f"output_dir: {out} holds files that are not an output of this project (no "
                            f"{FINISHED_MARKER}): choose another output_dir, or move them away yourself")
        if not overwrite:
            raise UserError(f"output directory {out} already holds a finished run: pass --overwrite true to replace it")
    if tmp.exists() and _empty(tmp):
        _release(tmp)
        shutil.rmtree(tmp)  # an earlier run that failed before writing anything: nothing to resume or lose
    if tmp.exists() and not _ours(tmp):
        raise UserError(f"output_dir: {tmp} holds files that are not an unfinished run of this project: "
                        "choose another output_dir, or move them away yourself")
    if tmp.exists() and not resume:
        if overwrite:
            _release(tmp)
            shutil.rmtree(tmp)
        else:
            raise UserError(f"{tmp} holds an unfinished run: pass {again}")
    if resume is True and not tmp.exists():
        raise UserError(f"--resume: no unfinished run to continue in {tmp}")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        if tmp not in _held:
            _held[tmp] = _take_lock(tmp)  # two runs that both found no tmp: the second one stops here
        (tmp / IN_PROGRESS_MARKER).write_text("a run is writing here; see run_info.json in the finished folder\n")
    except OSError as err:
        raise UserError(f"output_dir: cannot write in {tmp.parent} ({err.strerror}): set output_dir to a "
                        "writable folder") from None
    _restart, _writing = f"; the unfinished run stays in {tmp}: pass {again}", tmp
    return tmp


def _release(tmp: Path) -> None:
    lock = _held.pop(tmp, None)
    if lock is not None:
        lock.release()


def start_training_output(args) -> tuple[str, Path, bool]:
    """The opening every Trainer-based stage shares: remember the final folder, take over the push flag (the
    finished folder is pushed once, with its card, not by the Trainer on every save), and point the Trainer at
    `<out>.tmp`, prepared by rank 0 only (the others write nothing there but wait for it).

    Returns (final_dir, tmp, push).
    """
    final_dir = args.output_dir
    push, args.push_to_hub = args.push_to_hub, False
    if push and not args.hub_model_id:
        raise UserError("push_to_hub needs hub_model_id")
    tmp = prepare(final_dir, args.overwrite, args.resume) if args.process_index == 0 else tmp_dir(final_dir)
    args.output_dir = str(tmp)
    return final_dir, tmp, push


def finish(tmp: str | Path, out: str | Path) -> Path:
    """Move a completed temporary folder into place (replacing an old output only via prepare(overwrite))."""
    tmp, out = Path(tmp), Path(out)
    if not is_finished(tmp):
        raise RuntimeError(f"{tmp} has no {FINISHED_MARKER}: refusing to publish an incomplete output")
    if not any(p.name not in _RECORDS and p.name not in _BOOKKEEPING for p in tmp.iterdir()):
        raise UserError(f"{tmp} holds only the run's records and no result: nothing was published (see the log "
                        "above for what produced nothing)")
    if out.exists() and not out.is_dir() or out.is_dir() and any(out.iterdir()) and not is_finished(out):
        raise UserError(f"output_dir: {out} was replaced by something else during the run: the finished run "
                        f"stays in {tmp}")  # prepare checked it; never rename what is not ours
    (tmp / IN_PROGRESS_MARKER).unlink(missing_ok=True)
    (tmp / LOCK).unlink(missing_ok=True)  # still held until exit: a run that looks now finds the finished folder
    old = None
    if out.exists():  # a fresh name for the old output: nothing of the user's is ever in the way
        old = Path(tempfile.mkdtemp(prefix=f"{out.name}.old-", dir=out.parent))
        out.rename(old / out.name)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old)
    return out


def _damage(checkpoint: Path) -> str | None:
    """Why a checkpoint cannot be resumed from, or None. The Trainer writes trainer_state.json last (after
    weights, optimizer, scheduler, RNG): a state file missing or not parsing means a kill mid-save. A weights or
    optimizer file cut short (a full disk, a copy interrupted) is found by reading its header or zip index,
    which costs no tensor reads."""
    import zipfile

    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return "no complete trainer_state.json"
    for f in sorted(checkpoint.iterdir()):
        try:
            if f.suffix == ".safetensors":
                from safetensors import safe_open

                with safe_open(str(f), "pt"):
                    pass
            elif f.suffix in (".pt", ".pth", ".bin"):
                with zipfile.ZipFile(f):
                    pass
        except Exception as err:  # safetensors, zipfile and the OS each raise their own type
            return f"{f.name} is damaged ({str(err).splitlines()[0][:80] if str(err) else type(err).__name__})"
    return None


def newest_checkpoint(folder: str | Path) -> Path | None:
    """The highest-step usable `checkpoint-N` (a kill mid-save, or a damaged file, leaves the previous one);
    each one passed over is said, with why."""
    ckpts = sorted(((int(p.name.split("-")[-1]), p) for p in Path(folder).glob("checkpoint-*")
                    if p.name.split("-")[-1].isdigit()), reverse=True)
    for _, p in ckpts:
        why = _damage(p)
        if why is None:
            return p
        print(f"[resume] {p.name} skipped: {why}")
    return None


SHAPE_KEYS = ("model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "intermediate_size")


def check_checkpoint_shape(checkpoint: Path, model_config) -> None:
    """Resuming a checkpoint of another model shape fails here with one line, not deep in load_state_dict."""
    try:
        saved = json.loads((checkpoint / "config.json").read_text())
    except (OSError, ValueError):
        raise UserError(f"{checkpoint}: no readable config.json: pass --overwrite true to start over") from None
    ours = model_config.to_dict()
    diff = [f"{k} {saved.get(k)} vs {ours.get(k)}" for k in SHAPE_KEYS if saved.get(k) != ours.get(k)]
    if diff:
        raise UserError(f"{checkpoint} was saved by a different model ({', '.join(diff)}): resume with the "
                        "config it was started with, or pass --overwrite true to start over")


# What each stage's finished output is (its run_info.json names the stage), for one-line refusals.
KINDS = {"01_data": "a dataset", "02_tokenizer": "a tokenizer", "03_tokenize": "token shards",
         "03_pretrain": "a pretrained causal LM", "04_sft": "an SFT model", "05_reward": "a reward model",
         "06_rlhf": "an RLHF policy", "07_eval": "an evaluation report", "08_sweep": "a sweep",
         "09_ablate": "an ablation", "10_mitigate": "a mitigation report", "00_plan": "a plan"}
CHAT_STAGES = {"04_sft", "06_rlhf"}  # stages whose models answer in the chat format (the base model has the
# template too, from the tokenizer, but was never trained on it)
NEEDED = {"reward": ("a reward model", "ForSequenceClassification"), "causal_lm": ("a causal LM", "ForCausalLM")}


def kind_of(path: str | Path) -> str:
    """What a local folder holds, as a phrase: its stage's kind, else its model class, else 'not a model'."""
    p = Path(path).expanduser()
    try:
        stage = json.loads((p / FINISHED_MARKER).read_text()).get("stage")
    except (OSError, ValueError, AttributeError):
        stage = None
    if stage in KINDS:
        return KINDS[stage]
    try:
        arch = (json.loads((p / "config.json").read_text()).get("architectures") or ["a model of unknown class"])[0]
    except (OSError, ValueError, AttributeError):
        return "not a model folder"
    return f"a {arch}"


def check_parent(path: str, make_target: str, key: str | None = None) -> None:
    """A previous stage's model folder, or a Hub id (`org/name`): fail early with one line if it is neither, or
    if a local folder holds another kind of artefact than the stage reads (a reward model for make_target
    'reward', a causal LM otherwise): an SFT model given as the reward model would train against a random head."""
    p = Path(path).expanduser()
    where = f"{key}: " if key else ""
    if p.exists():
        if not (p / "config.json").is_file():
            raise UserError(f"{where}no model in {path} (run `make {make_target}` first)")
        need, suffix = NEEDED["reward" if make_target == "reward" else "causal_lm"]
        try:
            archs = json.loads((p / "config.json").read_text()).get("architectures") or []
        except (OSError, ValueError, AttributeError):
            raise UserError(f"{where}{path}/config.json is not readable JSON: rerun `make {make_target}`") from None
        if not any(str(a).endswith(suffix) for a in archs):
            raise UserError(f"{where}{need} is needed; {path} is {kind_of(p)} (run `make {make_target}`, or point "
                            f"{key or 'it'} at one)")
    elif path.startswith((".", "/", "~")) or path.count("/") != 1 or Path(path.split("/")[0]).is_dir():
        raise UserError(f"{where}model not found: {path} (run `make {make_target}` first)")


def load_tokenizer(path: str, key: str, make_target: str):
    """AutoTokenizer.from_pretrained of a previous stage's folder (or a Hub id), a missing, empty or damaged
    tokenizer.json as one line naming the key and the fix, not a traceback from deep in tokenizers."""
    from transformers import AutoTokenizer

    local = Path(path).expanduser()
    looks_local = local.exists() or path.startswith((".", "/", "~")) or path.count("/") != 1 \
        or Path(path.split("/")[0]).is_dir()  # as check_parent: anything but `org/name` is a folder
    if looks_local and not (local / "tokenizer.json").is_file():
        raise UserError(f"{key}: no tokenizer in {path} (run `make {make_target}` first)")
    try:
        return AutoTokenizer.from_pretrained(path)
    except Exception as err:  # tokenizers/transformers raise many types for one cause: a file not as written
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise UserError(f"{key}: cannot load the tokenizer in {path} ({reason}): rerun `make {make_target}` "
                        f"or point {key} at a finished output") from None
