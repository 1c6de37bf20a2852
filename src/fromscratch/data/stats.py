"""Per-source, per-step counts: every document that enters a step is kept or dropped under one reason, and a
step that creates documents (counterfactual augmentation) counts them as `added`.

`check()` asserts the books balance (in = kept + dropped for each source and step, and each step starts with
what the previous one kept plus what it added); the recipe calls it before writing stats.json, and the tests
read the file back.
"""

from __future__ import annotations

from collections import Counter

from ..config import UserError


class StepStats:
    def __init__(self):
        self.steps: list[dict] = []

    def record(self, step: str, sources: list[str], reasons: list[str], changes: dict | None = None,
               extra: dict | None = None, added: list[str] | None = None) -> None:
        """reasons[i] is '' when document i (from sources[i]) is kept, else why it was dropped. `added` lists
        the source of each document the step created (they enter the next step beside the kept ones)."""
        by_source: dict[str, dict] = {}
        for src, why in zip(sources, reasons):
            s = by_source.setdefault(src, {"in": 0, "kept": 0, "dropped": Counter()})
            s["in"] += 1
            if why:
                s["dropped"][why] += 1
            else:
                s["kept"] += 1
        total = {"in": len(reasons), "kept": sum(1 for r in reasons if not r),
                 "dropped": dict(Counter(r for r in reasons if r))}
        if added is not None:  # present only on steps that can add, so the other entries keep their shape
            total["added"] = len(added)
            for src, n in Counter(added).items():
                by_source.setdefault(src, {"in": 0, "kept": 0, "dropped": Counter()})["added"] = n
            for s in by_source.values():
                s.setdefault("added", 0)
        entry = {"step": step, **total,
                 "by_source": {k: {**v, "dropped": dict(v["dropped"])} for k, v in by_source.items()}}
        if changes:
            entry["changed"] = dict(changes)
        if extra:
            entry.update(extra)
        self.steps.append(entry)

    def check_not_emptied(self) -> None:
        """Stop the run, naming its reasons, at the first step that dropped every document (the later steps,
        and the saved dataset, cannot be made of nothing). Called on the books of the whole corpus: one task's
        share may well be emptied by a filter."""
        for e in self.steps:
            if e["in"] and not e["kept"] and not e.get("added"):
                top = ", ".join(f"{n} {why}" for why, n in Counter(e["dropped"]).most_common(3))
                raise UserError(f"step '{e['step']}' dropped all {e['in']} documents ({top}): relax its settings "
                                "or add data")

    def check(self) -> None:
        prev: dict | None = None
        for e in self.steps:
            assert e["in"] == e["kept"] + sum(e["dropped"].values()), f"{e['step']}: counts do not reconcile"
            if prev is not None:
                out = prev["kept"] + prev.get("added", 0)
                assert e["in"] == out, f"{e['step']}: starts with {e['in']}, not {out}"
            for src, s in e["by_source"].items():
                assert s["in"] == s["kept"] + sum(s["dropped"].values()), f"{e['step']}/{src}: do not reconcile"
                if prev is not None:
                    p = prev["by_source"].get(src, {})
                    before = p.get("kept", 0) + p.get("added", 0)
                    assert s["in"] == before, f"{e['step']}/{src}: starts with {s['in']}, previous kept {before}"
            prev = e

    def to_dict(self) -> list[dict]:
        return self.steps

    @classmethod
    def merge(cls, runs: list[list[dict]]) -> "StepStats":
        """Sum the counts of the same steps recorded by several shards (other fields are summed if numbers,
        or dicts of numbers, such as score histograms)."""
        merged = cls()
        for entries in zip(*runs):
            total: dict = {"step": entries[0]["step"], "in": 0, "kept": 0, "dropped": Counter(), "by_source": {}}
            for e in entries:
                total["in"] += e["in"]
                total["kept"] += e["kept"]
                total["dropped"].update(e["dropped"])
                for src, c in e["by_source"].items():
                    t = total["by_source"].setdefault(src, {"in": 0, "kept": 0, "dropped": Counter()})
                    t["in"] += c["in"]
                    t["kept"] += c["kept"]
                    t["dropped"].update(c["dropped"])
                    if "added" in c:
                        t["added"] = t.get("added", 0) + c["added"]
                for k, v in e.items():
                    if k == "changed":
                        total.setdefault("changed", Counter()).update(v)
                    elif k not in ("step", "in", "kept", "dropped", "by_source"):
                        summed = _add(total.get(k), v)
                        if summed is not None:
                            total[k] = summed
            total["dropped"] = dict(total["dropped"])
            for t in total["by_source"].values():
                t["dropped"] = dict(t["dropped"])
            if "changed" in total:
                total["changed"] = dict(total["changed"])
            merged.steps.append(total)
        return merged


def _add(a, b):
    """a + b for numbers and (nested) dicts of numbers; None for anything else (not merged)."""
    if isinstance(b, bool) or b is None:
        return None
    if isinstance(b, (int, float)):
        return (a or 0) + b
    if isinstance(b, dict):
        out = dict(a or {})
        for k, v in b.items():
            s = _add(out.get(k), v)
            if s is not None:
                out[k] = s
        return out
    return None
