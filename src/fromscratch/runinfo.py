"""What a stage records beside its artefact so the run can be understood and redone.

`config.yaml` (the resolved config, reusable as `--config`), and `run_info.json`: stack versions, git commit of
the project, hardware, data lineage (input paths and content hashes), metrics, and the installed packages.
`run_info.json` is written last: its presence marks the output as finished (see artifacts.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata as md
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import yaml

STACK = (
    "torch", "transformers", "tokenizers", "datasets", "accelerate", "trl", "peft", "deepspeed",
    "lm_eval", "huggingface_hub", "safetensors",
)


def stack_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in STACK:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (sha + ("-dirty" if dirty else "")) or None


def hardware() -> dict:
    info = {"platform": platform.platform(), "cpus": os.cpu_count()}
    # only a stage that ran torch has torch facts to report: importing it here cost the data stage, which never
    # does, 1.6 CPU seconds (measured)
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def hash_path(path: str | Path) -> str:
    """sha256 over a file or a folder's files (names and bytes, in sorted order)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def save_config(folder: str | Path, config: dict) -> None:
    with open(Path(folder) / "config.yaml", "w") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)


def write_run_info(folder: str | Path, *, stage: str, config: dict, lineage: list, metrics: dict,
                   started: float, extra: dict | None = None) -> dict:
    """Write config.yaml and run_info.json (last: it marks the output finished)."""
    folder = Path(folder)
    save_config(folder, config)
    freeze = sorted(f"{d.metadata['Name']}=={d.version}" for d in md.distributions() if d.metadata["Name"])
    (folder / "requirements-frozen.txt").write_text("\n".join(freeze) + "\n")
    info = {
        "stage": stage,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_seconds": round(time.time() - started, 2),
        "command": [Path(sys.argv[0]).as_posix()] + sys.argv[1:],
        "git_commit": git_commit(),
        "versions": stack_versions(),
        "hardware": hardware(),
        "lineage": [dataclasses.asdict(x) if dataclasses.is_dataclass(x) else x for x in lineage],
        "metrics": metrics,
        **(extra or {}),
    }
    tmp = folder / "run_info.json.part"
    tmp.write_text(json.dumps(info, indent=2, default=str))
    tmp.rename(folder / "run_info.json")
    return info


def record_push(folder: str | Path, repo_id: str, url: str, repo_type: str = "model") -> None:
    """Note in a finished output's run_info.json where it was pushed (cards.hub_id_of reads it back)."""
    path = Path(folder) / "run_info.json"
    if not path.is_file():
        return
    info = json.loads(path.read_text())
    info["hub"] = {"repo_id": repo_id, "repo_type": repo_type, "commit_url": url,
                   "pushed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(info, indent=2, default=str))
    part.rename(path)
