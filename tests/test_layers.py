"""The package's layers: no module imports from a layer above it, and no modules import each other in a circle
(imports inside functions count too).

Bottom to top: the core (the modules directly in src/fromscratch), then one subpackage per concern. A module may
import its own layer and those below it; recipes, tests and benchmarks sit above them all. A new subpackage must
be given its place in LAYERS (and its reason in its __init__.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = ["core", "data", "tokenization", "training", "pretraining", "alignment", "safety", "evaluation", "experiments"]
FOLDERS = {"eval_tasks": "evaluation"}  # package-data folders that hold code: lm-eval's dataset loaders


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str, src: Path) -> str | None:
    """The layer of `fromscratch[.x[.y]]`: a top-level module is core, anything in a folder is that folder's."""
    parts = module.split(".")
    if len(parts) == 1 or (src / parts[0] / f"{parts[1]}.py").is_file():
        return "core"
    return parts[1] if parts[1] in LAYERS else FOLDERS.get(parts[1])


def imports(path: Path, src: Path) -> set[str]:
    """Every fromscratch module the file imports: relative imports resolved, and `from pkg import mod` counted as
    importing mod."""
    here = module_name(path, src)
    package = here.split(".") if path.name == "__init__.py" else here.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                sub = Path(src, *f"{target}.{alias.name}".split("."))
                out.add(f"{target}.{alias.name}" if sub.with_suffix(".py").is_file() or sub.is_dir() else target)
    root = here.split(".")[0]
    return {m for m in out if m.split(".")[0] == root}


def violations(src: Path, package: str = "fromscratch") -> list[str]:
    out = []
    for path in sorted((src / package).rglob("*.py")):
        me = module_name(path, src)
        mine = layer_of(me, src)
        if mine is None:
            out.append(f"{me}: its folder is in no layer (add it to LAYERS in tests/test_layers.py)")
            continue
        for target in sorted(imports(path, src)):
            theirs = layer_of(target, src)
            if theirs is not None and LAYERS.index(theirs) > LAYERS.index(mine):
                out.append(f"{me} ({mine}) imports {target} ({theirs}), a layer above it")
    return out


def cycles(src: Path, package: str = "fromscratch") -> list[list[str]]:
    """Every circle of imports between modules (a strongly connected set of two or more), each sorted."""
    graph = {module_name(p, src): set() for p in (src / package).rglob("*.py")}
    for path in (src / package).rglob("*.py"):
        me = module_name(path, src)
        graph[me] = {m for m in imports(path, src) if m in graph and m != me}
    order, low, stack, out, counter = {}, {}, [], [], [0]

    def visit(v):  # Tarjan's strongly connected components
        order[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        for w in graph[v]:
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in order:
            visit(v)
    return sorted(out)


def test_no_modules_import_each_other_in_a_circle():
    assert cycles(SRC) == []


def test_the_check_finds_a_circle_through_a_lazy_import(tmp_path):
    files = {  # probes -> ethos at the top, ethos -> probes inside a function: the shape evaluation/ once had
        "fromscratch/__init__.py": "",
        "fromscratch/evaluation/__init__.py": "",
        "fromscratch/evaluation/probes.py": "from fromscratch.evaluation import ethos\n",
        "fromscratch/evaluation/ethos.py": "def load():\n    from .probes import load_split\n",
        "fromscratch/evaluation/scoring.py": "",
        "fromscratch/evaluation/rtp.py": "from fromscratch.evaluation.scoring import on\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cycles(tmp_path) == [["fromscratch.evaluation.ethos", "fromscratch.evaluation.probes"]]


def test_no_module_imports_from_a_layer_above_it():
    assert violations(SRC) == []


def test_every_folder_of_code_has_a_layer():
    folders = {p.parent.relative_to(SRC / "fromscratch").parts[0] for p in (SRC / "fromscratch").rglob("*.py")
               if p.parent != SRC / "fromscratch"}
    assert folders - set(LAYERS) - set(FOLDERS) == set()


def test_the_check_finds_an_upward_import_however_it_is_written(tmp_path):
    files = {
        "fromscratch/__init__.py": "",
        "fromscratch/config.py": "from fromscratch.data import clean\n",            # core -> data, absolute
        "fromscratch/data/__init__.py": "",
        "fromscratch/data/clean.py": "def f():\n    from ..evaluation.toxicity import score\n",  # lazy, relative
        "fromscratch/evaluation/__init__.py": "",
        "fromscratch/evaluation/toxicity.py": "from fromscratch import config\nfrom ..data import clean\n",
        "fromscratch/experiments/__init__.py": "",
        "fromscratch/experiments/sweep.py": "from fromscratch.evaluation import toxicity\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert violations(tmp_path) == [
        "fromscratch.config (core) imports fromscratch.data.clean (data), a layer above it",
        "fromscratch.data.clean (data) imports fromscratch.evaluation.toxicity (evaluation), a layer above it",
    ]
