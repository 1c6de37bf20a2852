from dataclasses import dataclass, field

import pytest

from conftest import ROOT
from fromscratch.config import UserError, parse, to_dict


@dataclass
class Args:
    learning_rate: float = 1e-3
    layers: int = 2
    sources: list[str] = field(default_factory=lambda: ["default"])
    name: str | None = None
    flag: bool = False


def _yaml(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return str(p)


def test_yaml_then_overrides(tmp_path):
    cfg = _yaml(tmp_path, "learning_rate: 3e-4\nlayers: 4\nsources: [a, b]\n")
    (args,) = parse((Args,), ["--config", cfg, "--layers", "6"])
    assert args.learning_rate == pytest.approx(3e-4) and args.layers == 6 and args.sources == ["a", "b"]


def test_unknown_key_names_key_file_and_suggestion(tmp_path):
    cfg = _yaml(tmp_path, "lerning_rate: 0.1\n")
    with pytest.raises(UserError) as err:
        parse((Args,), ["--config", cfg])
    msg = str(err.value)
    assert "lerning_rate" in msg and cfg in msg and "learning_rate" in msg and "\n" not in msg


@pytest.mark.parametrize("text,key", [("layers: 2.5\n", "layers"), ("learning_rate: fast\n", "learning_rate"),
                                      ("flag: 3\n", "flag"), ("sources: data.txt\n", "sources")])
def test_wrong_type_names_key(tmp_path, text, key):
    with pytest.raises(UserError, match=f"key '{key}' expects"):
        parse((Args,), ["--config", _yaml(tmp_path, text)])


def test_bad_override_and_missing_file_are_one_line(tmp_path):
    with pytest.raises(UserError, match="command line: .*--nope"):
        parse((Args,), ["--nope", "1"])
    with pytest.raises(UserError, match="command line: .*layers"):
        parse((Args,), ["--layers", "two"])
    with pytest.raises(UserError, match="config file not found"):
        parse((Args,), ["--config", str(tmp_path / "missing.yaml")])
    with pytest.raises(UserError, match="not valid YAML"):
        parse((Args,), ["--config", _yaml(tmp_path, "a: [unclosed\n")])
    empty = _yaml(tmp_path, "# only a comment\n")  # was "command line: Config file ... must contain a YAML mapping"
    with pytest.raises(UserError, match=f"^{empty}: holds no key: value"):
        parse((Args,), ["--config", empty])


def test_to_dict_never_keeps_tokens():
    @dataclass
    class WithToken:
        hub_token: str = "hf_secret"
        lr: float = 0.1

    assert to_dict(WithToken()) == {"lr": 0.1}


# --- a key given twice is refused, wherever it is and whatever the key (issue 28) ---------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402


def _stage_keys():
    import dataclasses
    import importlib.util

    spec = importlib.util.spec_from_file_location("pretrain_run", ROOT / "recipes/03_pretrain/run.py")
    mod = importlib.util.module_from_spec(spec)
    import sys

    sys.modules[spec.name] = mod  # dataclasses resolve their string annotations through it
    spec.loader.exec_module(mod)
    types_ = (mod.ModelArguments, mod.DataArguments, mod.PretrainArguments)
    return types_, sorted(f.name for t in types_ for f in dataclasses.fields(t) if f.init)


_TYPES, _KEYS = _stage_keys()


@settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(_KEYS), before=st.integers(0, 5), between=st.integers(0, 5))
def test_a_yaml_with_a_key_twice_is_refused_naming_it_and_both_lines(tmp_path_factory, key, before, between):
    from fromscratch.config import UserError, check_yaml

    others = [k for k in _KEYS if k != key]
    lines = [f"# comment {i}" for i in range(before)] + [f"{key}: 1"] + \
            [f"{others[i]}: null" for i in range(between)] + [f"{key}: 2"]
    path = tmp_path_factory.mktemp("dup") / "c.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError) as err:
        check_yaml(path, _TYPES)
    first, second = before + 1, before + between + 2
    assert str(err.value) == (f"{path}:{second}: not valid YAML (key '{key}' given twice (lines {first} and "
                              f"{second}): keep one)")


def test_a_nested_key_twice_is_refused_too(tmp_path):
    from fromscratch.config import UserError, check_yaml

    path = tmp_path / "c.yaml"
    path.write_text("hub_model_id: null\nsources:\n  - {text: a, text: b}\n")
    with pytest.raises(UserError, match=r"c.yaml:3: not valid YAML \(key 'text' given twice"):
        check_yaml(path, _TYPES)


@dataclass
class Paths:
    output_dir: str = "outputs/x"
    model_dir: str = "outputs/m"
    sources: list[str] = field(default_factory=lambda: ["default"])


def test_dirs_are_expanded_as_a_shell_would(tmp_path, monkeypatch):
    monkeypatch.setenv("FS_RUNS", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (args,) = parse((Paths,), ["--output_dir", "$FS_RUNS/run", "--model_dir", "~/m"])
    assert args.output_dir == f"{tmp_path}/run" and args.model_dir == f"{tmp_path}/home/m"
    with pytest.raises(UserError, match=r"^command line: output_dir '\$FS_NOPE/run': the variable \$FS_NOPE is not set$"):
        parse((Paths,), ["--output_dir", "$FS_NOPE/run"])


@pytest.mark.parametrize("out,says", [
    ("", "names no folder of its own"), (".", "names no folder of its own"), ("a/..", "names no folder of its own"),
    ("/", "names no folder of its own"), ("./", "names no folder of its own"), ("..", "names no folder of its own"),
])
def test_an_output_dir_that_cannot_be_a_runs_own_is_refused(out, says):
    with pytest.raises(UserError, match=f"^command line: output_dir .*{says}"):
        parse((Paths,), ["--output_dir", out])


def test_the_checkout_and_the_inputs_are_never_an_output(tmp_path, monkeypatch):
    from fromscratch.config import CHECKOUT

    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="is the checkout: give a folder"):
        parse((Paths,), ["--output_dir", str(CHECKOUT)])
    with pytest.raises(UserError, match="or above it"):
        parse((Paths,), ["--output_dir", str(CHECKOUT.parent)])
    (tmp_path / "data").mkdir()
    for out, model, relation in (("m", "m", "is"), ("m/sub", "m", "is inside"), ("runs", "runs/m", "holds")):
        with pytest.raises(UserError, match=f"^command line: output_dir {out} {relation} model_dir \\({model}\\)"):
            parse((Paths,), ["--output_dir", out, "--model_dir", model])
    with pytest.raises(UserError, match=r"output_dir data/x is inside sources data, which this run reads"):
        parse((Paths,), ["--output_dir", "data/x", "--sources", "data", "default"])
    (args,) = parse((Paths,), ["--output_dir", "runs/a", "--model_dir", "runs/b"])  # siblings are fine
    assert args.output_dir == "runs/a"


@settings(max_examples=150, deadline=None)
@given(st.text(st.sampled_from("ab./~$_ "), max_size=8))
def test_any_output_dir_is_accepted_or_one_line(text):
    try:
        (args,) = parse((Paths,), ["--output_dir", text])
    except UserError as err:
        assert "\n" not in str(err) and str(err).startswith("command line: output_dir")
    else:
        from pathlib import Path

        assert Path(args.output_dir).name not in ("", ".", "..")
