"""Push a finished stage output (artefact + card) to the Hugging Face Hub.

The token comes from HF_TOKEN or the login cache, read by huggingface_hub itself; we never take it as a config
value, so it can never end up in config.yaml, run_info.json, a card or a log. HF_ENDPOINT is honoured, which is
how the tests push to a loopback server.

What goes up is the finished folder as it is, TensorBoard logs (`runs/`) included so the Hub's metrics tab
shows the curves, and a dataset's parquet shards (`train/*.parquet`) so `load_dataset(repo)` reads it; only
checkpoints, temporary files and wandb's local cache stay behind. Before the upload the card's base_model is
pointed at the parent's Hub id if the parent has been pushed (cards.link_parent); after it, the repo id is
recorded in run_info.json, so a later stage built on this folder names it as its base_model.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import HfApi

from . import cards, runinfo
from .config import UserError

IGNORE = ["checkpoint-*/**", "*.tmp", "*.part", "wandb/**"]


def push_folder(folder: str | Path, repo_id: str | None, *, private: bool = False,
                commit_message: str = "Upload from fromscratch", repo_type: str = "model") -> str:
    """Create the repo if needed and upload the folder (checkpoints and temp files left out). Returns the URL."""
    if not repo_id:
        raise UserError("--push_to_hub needs --hub_model_id <namespace/name>")
    api = HfApi()
    if repo_type == "model":
        cards.link_parent(folder)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type=repo_type)
        info = api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type=repo_type,
            commit_message=commit_message,
            ignore_patterns=IGNORE,
        )
    except Exception as err:  # network, auth, quota: the library's message on one line
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"push to the Hub failed for '{repo_id}': {first}") from None
    url = getattr(info, "commit_url", str(info))
    runinfo.record_push(folder, repo_id, url, repo_type)
    return url
