from dataclasses import dataclass, field

import pytest

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
