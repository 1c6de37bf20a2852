"""Write a stage's YAML from one of its shipped configs: the same keys, order and one-line comments, new values.

Every key of a shipped YAML has a one-line comment. A recipe that writes another stage's config (the planner's
pretrain.yaml, the sweep's best_<scale>.yaml) takes each key's comment from that stage's reference config
(`comments`), so the comment of a stage 03 key is written once, in recipes/03_pretrain/config_tiny.yaml, and a key
added there reaches every generated config with its comment and its default.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import yaml

_KEY = re.compile(r"^(\w+):(?:\s|$)")  # a top-level key; YAML needs a space before a comment's '#'


def comments(path: str | Path) -> dict[str, str]:
    """key -> its one-line comment in a YAML's top-level `key: value  # comment` lines."""
    out = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if _KEY.match(line) and " #" in line:
            out[_KEY.match(line).group(1)] = line.split(" #", 1)[1].strip().lstrip("#").strip()
    return out


def value(v) -> str:
    """A YAML scalar or flow list that reads back as `v` (floats short, strings quoted only where needed)."""
    if isinstance(v, float):
        return f"{v:.4g}" if 1e-3 <= abs(v) < 1e4 or v == 0 else f"{v:.3e}"
    if isinstance(v, str):
        return v if _reads_back(v) else json.dumps(v)
    return json.dumps(v) if isinstance(v, (list, dict, bool)) or v is None else str(v)


def _reads_back(text: str) -> bool:
    try:
        return bool(text) and "#" not in text and yaml.safe_load(text) == text
    except yaml.YAMLError:
        return False


def line(key: str, v, comment: str) -> str:
    """`key: value` padded so the comments line up at column 32, as in the shipped configs."""
    return f"{key}: {value(v)} ".ljust(31) + f"# {comment}"


def substitute(template: str | Path, values: dict, reference: dict[str, str], header: list[str],
               fallback: Callable[[str], str] | None = None) -> str:
    """The template YAML with `values` put in place, each with the reference's comment for its key; the keys
    the template lacks are appended. Other lines stay as they are. The template's title (its leading comment
    lines but the section heading above the first key) gives way to `header`. A key with no reference comment
    takes `fallback(key)`; without a fallback it is a KeyError (a generator writing a key its stage never
    documented)."""
    def comment(key: str) -> str:
        if key in reference:
            return reference[key]
        if fallback is None:
            raise KeyError(f"{key}: no comment for it in the reference config")
        return fallback(key)

    lines = Path(template).read_text(encoding="utf-8").splitlines()
    title = next((i for i, x in enumerate(lines) if not x.startswith("#")), len(lines))
    out, done, replaced = list(header), set(), False
    for text in lines[title - 1 if title >= 2 else title:]:
        if replaced and text.startswith((" ", "-")):
            continue  # the rest of a block value that was replaced
        m = _KEY.match(text)
        replaced = bool(m and m.group(1) in values)
        if replaced:
            key = m.group(1)
            text = line(key, values[key], comment(key))
            done.add(key)
        out.append(text)
    extra = [k for k in values if k not in done]
    if extra:
        out.append("# Not in the base config")
        out += [line(k, values[k], comment(k)) for k in extra]
    return "\n".join(out) + "\n"
