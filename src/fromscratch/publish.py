"""The last step every stage shares: card, run record, atomic rename, the `[done]` line, the push if asked.

A module of its own because it stands on cards, runinfo, artifacts and hub: in any one of them it would make a
lower module import a higher one. What differs between stages (the template and what it shows, the parent
models in the lineage, the `[done]` line's text) comes in as plain arguments.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import artifacts, cards, hub, runinfo


def print_metrics(metrics: dict, rank: int = 0) -> None:
    """The `[metrics]` line: the run's metrics as one JSON object, floats to 4 places; by rank 0 only."""
    if rank == 0:
        print("[metrics] " + json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}))


def publish(tmp: str | Path, out: str | Path, *, stage: str, template: str, name: str, card: dict, config: dict,
            lineage: list, metrics: dict, started: float, what: str, summary: str = "", parents: list | None = None,
            push: bool = False, hub_model_id: str | None = None, private: bool = False) -> Path:
    """Render the card, write the run record (last: it marks `tmp` finished), rename `tmp` to `out`, print
    `[done] <what> in <out>: <summary>`, and push the finished folder when `push` (printing `[hub] <url>`).

    name: the card's model name unless hub_model_id is set; card: the template's own context (tags, plots,
    base_model, ...), beside what every card gets (lineage, config, metrics, versions, datasets, load path);
    parents: lineage entries of the models and tokenizer it was built on (run_info.json only). Returns `out`.
    """
    cards.render(tmp, template, model_name=hub_model_id or name, datasets=cards.hub_datasets(lineage),
                 lineage=lineage, config=config, metrics=metrics, versions=runinfo.stack_versions(),
                 load_path=hub_model_id or out, **card)
    # A parent folder is recorded with its absolute path too: a later push from another directory still finds it
    # (a relative `outputs/03_pretrain` read from elsewhere would pass for the Hub repo of a user `outputs`).
    parents = [{**p, "resolved": str(Path(p["spec"]).expanduser().resolve())}
               if "resolved" not in p and Path(p["spec"]).expanduser().exists() else p for p in parents or []]
    runinfo.write_run_info(tmp, stage=stage, config=config, lineage=[*lineage, *parents], metrics=metrics,
                           started=started)
    done = artifacts.finish(tmp, out)
    print(f"[done] {what} in {done}" + (f": {summary}" if summary else ""))
    if push:
        print(f"[hub] {hub.push_folder(done, hub_model_id, private=bool(private))}")
    return done
