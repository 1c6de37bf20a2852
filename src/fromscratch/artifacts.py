"""Atomic stage outputs: work in `<out>.tmp`, rename to `<out>` only when everything is written.

A finished output is never half-written (a crash leaves `<out>.tmp`, which `--resume` continues) and never
overwritten by accident (`--overwrite` is the only way to replace one).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .config import UserError

FINISHED_MARKER = "run_info.json"  # written last by every stage, so its presence means "finished"


def tmp_dir(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".tmp")


def is_finished(out: str | Path) -> bool:
    return (Path(out) / FINISHED_MARKER).is_file()


def prepare(out: str | Path, overwrite: bool = False, resume: bool | str = False) -> Path:
    """Check the output location before any work; return the temporary folder to write into.

    resume: True continues `<out>.tmp` (which must exist), "auto" continues it when it exists and starts fresh
    otherwise (a requeued job runs the same command every time), False refuses to touch it.
    """
    out = Path(out)
    tmp = tmp_dir(out)
    if out.exists() and not overwrite:
        what = "a finished run" if is_finished(out) else "files"
        raise UserError(f"output directory {out} already holds {what}: pass --overwrite true to replace it")
    if tmp.exists() and not any(tmp.iterdir()):
        tmp.rmdir()  # an earlier run that failed before writing anything: nothing to resume or lose
    if tmp.exists() and not resume:
        if overwrite:
            shutil.rmtree(tmp)
        else:
            raise UserError(
                f"{tmp} holds an unfinished run: pass --resume true to continue it, or --overwrite true to start over"
            )
    if resume is True and not tmp.exists():
        raise UserError(f"--resume: no unfinished run to continue in {tmp}")
    tmp.mkdir(parents=True, exist_ok=True)
    return tmp


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
    old = out.with_name(out.name + ".old")
    if out.exists():
        if old.exists():
            shutil.rmtree(old)
        out.rename(old)
    tmp.rename(out)
    if old.exists():
        shutil.rmtree(old)
    return out


def _complete(checkpoint: Path) -> bool:
    # The Trainer writes trainer_state.json last (after weights, optimizer, scheduler, RNG): a checkpoint
    # whose state file is missing or does not parse was cut by a kill mid-save.
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
        return True
    except (OSError, ValueError):
        return False


def newest_checkpoint(folder: str | Path) -> Path | None:
    """The highest-step complete `checkpoint-N` (a kill mid-save leaves the previous one usable)."""
    ckpts = []
    for p in Path(folder).glob("checkpoint-*"):
        suffix = p.name.split("-")[-1]
        if suffix.isdigit() and _complete(p):
            ckpts.append((int(suffix), p))
    return max(ckpts)[1] if ckpts else None


SHAPE_KEYS = ("model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "intermediate_size")


def check_checkpoint_shape(checkpoint: Path, model_config) -> None:
    """Resuming a checkpoint of another model shape fails here with one line, not deep in load_state_dict."""
    saved = json.loads((checkpoint / "config.json").read_text())
    ours = model_config.to_dict()
    diff = [f"{k} {saved.get(k)} vs {ours.get(k)}" for k in SHAPE_KEYS if saved.get(k) != ours.get(k)]
    if diff:
        raise UserError(f"{checkpoint} was saved by a different model ({', '.join(diff)}): resume with the "
                        "config it was started with, or pass --overwrite true to start over")


def check_parent(path: str, make_target: str) -> None:
    """A previous stage's model folder, or a Hub id (`org/name`): fail early with one line if it is neither."""
    p = Path(path).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise UserError(f"no model in {path} (run `make {make_target}` first)")
    elif path.startswith((".", "/", "~")) or path.count("/") != 1 or Path(path.split("/")[0]).is_dir():
        raise UserError(f"model not found: {path} (run `make {make_target}` first)")
