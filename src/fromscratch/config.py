"""Parse a recipe's YAML + `--key value` overrides into dataclasses, failing early with one line.

TrlParser (the convention of TRL and the alignment-handbook) does the parsing. It does not check the YAML
itself: an unknown key only surfaces as an argparse message about `--key`, and a value of the wrong type is
taken as is (argparse converts strings only). So the YAML is validated here first, against the same
dataclasses, and every user mistake becomes a `UserError` whose one line names the key and the file.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import difflib
import functools
import math
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal, Union

import yaml

from . import os_errors


class UserError(Exception):
    """A mistake in the user's input (config, path, data). Shown as one line, never a traceback: a line break
    inside (a value the user typed, a library's message) is shown as `\\n`."""

    def __str__(self) -> str:
        return super().__str__().replace("\r", "\\r").replace("\n", "\\n")


class EarlyExit(Exception):
    """A run that stops on purpose before its end (preempted): its one line is printed, the exit status is `code`."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def cli(main: Callable[[], Any]) -> Callable[[], Any]:
    """Decorate a recipe's main(): a UserError prints `error: ...` on one line and exits with status 2.
    An EarlyExit prints its line and exits with its code. Under a distributed launch, every rank waits for the
    others to finish, then closes the process group."""

    @functools.wraps(main)
    def wrapper():
        try:
            result = main()
        except UserError as err:
            _abandon_output()
            print(f"error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        except KeyboardInterrupt:  # Ctrl-C: what is left and how to go on, not where Python was
            _abandon_output()
            artifacts = sys.modules.get(f"{__package__}.artifacts")
            print(f"interrupted{artifacts.restart_advice() if artifacts is not None else ''}", file=sys.stderr,
                  flush=True)
            raise SystemExit(130) from None
        except EarlyExit as stop:
            _close_process_group()
            print(str(stop), flush=True)
            raise SystemExit(stop.code) from None
        except Exception as err:
            machine = os_errors.of_machine(err)
            if machine is None:
                raise  # a bug of ours, not the user's disk or permissions: keep the traceback
            _abandon_output()
            print(f"error: {os_errors.message(machine)}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        _close_process_group()
        return result

    return wrapper


def _abandon_output() -> None:
    artifacts = sys.modules.get(f"{__package__}.artifacts")  # loaded by every stage that writes an output
    if artifacts is not None:
        artifacts.abandon()


def _close_process_group() -> None:
    # A rank that leaves while another still writes the output, with the process group open, can abort at
    # interpreter exit ("terminate called without an active exception": rank 1 of a gloo FSDP run, in CI).
    dist = sys.modules.get("torch.distributed")  # a recipe that never imported torch has nothing to close
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


# --- ranges and choices, declared once per key --------------------------------------------------------------

CHECK = "fromscratch_check"  # field metadata key (stripped before argparse sees the metadata)


@dataclasses.dataclass(frozen=True)
class Check:
    """The values a key accepts: a range (ge/gt/le/lt, finite unless said otherwise), `also` sentinel values
    outside it (max_steps -1: train for num_train_epochs), or `choices`. None passes where the type allows it."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple | None = None
    also: tuple = ()
    why: str = ""  # what the sentinel or the bound means, shown in the message

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        parts = [f"{op} {v:g}" for op, v in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
                 if v is not None]
        text = " and ".join(parts) if parts else "a finite number"
        text += "".join(f" or {a}" for a in self.also)
        return text + (f" ({self.why})" if self.why else "")

    def ok(self, value: Any) -> bool:
        if value is None or value in self.also:
            return True
        if self.choices is not None:
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return True  # a type mismatch is check_yaml's and argparse's to report
        return (math.isfinite(value)
                and (self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))


def checked(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, help: str = "",
            **check) -> Any:
    """A dataclass field whose value `parse` checks at start: `n: int = checked(1, ge=1, help="what it does")`."""
    c = Check(**check)
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={CHECK: c, "help": f"{help}; must be {c.describe()}" if help
                                       else f"must be {c.describe()}"})


def problems(values: dict, checks: dict[str, Check]) -> list[tuple[str, str]]:
    """(key, message) for each value outside its declared range; a list is checked element by element."""
    out = []
    for key, check in checks.items():
        if key not in values:
            continue
        value = values[key]
        items = value if isinstance(value, (list, tuple)) else [value]  # a list's every item: ranges and choices
        bad = [v for v in items if not check.ok(getattr(v, "value", v))]
        if bad:
            out.append((key, f"must be {check.describe()}, got {getattr(bad[0], 'value', bad[0])!r}"))
    return out


def checks_of(obj_or_type: Any) -> dict[str, Check]:
    """Every declared check of a dataclass: its fields' metadata plus its class's `value_checks` (the keys of a
    library's config class it extends, such as TrainingArguments.max_steps, declared by StageArguments)."""
    tp = obj_or_type if isinstance(obj_or_type, type) else type(obj_or_type)
    out = dict(getattr(tp, "value_checks", {}))
    out.update({f.name: f.metadata[CHECK] for f in dataclasses.fields(tp) if CHECK in f.metadata})
    return out


def _where(key: str, argv: list[str], config: str | None) -> str:
    flags = {f"--{key}", f"--{key.replace('_', '-')}"}
    if any(a in flags or a.split("=", 1)[0] in flags for a in argv):
        return "command line"
    return config or "default"


def _fields(types_: tuple[type, ...]) -> dict[str, tuple[dataclasses.Field, Any]]:
    out: dict[str, tuple[dataclasses.Field, Any]] = {}
    for dc in types_:
        hints = typing.get_type_hints(dc)
        for f in dataclasses.fields(dc):
            if f.init:
                out[f.name] = (f, hints.get(f.name, f.type))
    return out


def _matches(value: Any, tp: Any) -> bool:
    """Is a YAML value acceptable for a dataclass annotation? Lenient where argparse converts (str -> number)."""
    if tp is Any or tp is object:
        return True
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is Literal:
        return value in typing.get_args(tp)
    if origin in (list, tuple, typing.List):
        if not isinstance(value, (list, tuple)):
            return False
        args = typing.get_args(tp)
        return not args or all(_matches(v, args[0]) for v in value)
    if origin in (dict, typing.Dict):
        return isinstance(value, dict)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        # YAML reads `3e-4` as a string (no dot before the e): accept any float-like string.
        if isinstance(value, str):
            try:
                float(value)
                return True
            except ValueError:
                return False
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, (str, int, float)) and not isinstance(value, bool)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return value in {m.value for m in tp} or value in tp.__members__
    return True  # exotic annotations (callables, enums of the stack): leave them to the stack's own checks


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load, but a mapping with the same key twice is an error (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' given twice (lines {seen[key] + 1} and {key_node.start_mark.line + 1}): "
                    "keep one", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str):
    return yaml.load(text, Loader=_UniqueKeyLoader)


def check_yaml(path: str | Path, types_: tuple[type, ...]) -> dict:
    """Load a recipe YAML and check every key and value type against the dataclasses. One-line errors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UserError(f"{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if data is None:  # TrlParser refuses it too, as a "command line" error
        raise UserError(f"{path}: holds no key: value (empty, or only comments): start from one of the recipe's "
                        "config_*.yaml")
    if not isinstance(data, dict):
        raise UserError(f"{path}: must be a mapping of key: value, got {type(data).__name__}")
    known = _fields(types_)
    for key, value in data.items():
        if key == "env":
            continue
        if key not in known:
            hint = difflib.get_close_matches(str(key), known, n=1)
            raise UserError(
                f"{path}: unknown key '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
            )
        _, tp = known[key]
        if not _matches(value, tp):
            raise UserError(f"{path}: key '{key}' expects {_type_name(tp)}, got {value!r}")
    return data


LIBRARIES = ("transformers", "trl")  # config classes whose hundreds of keys `--help` summarises in one line


def _owner(dc: type, name: str) -> type:
    """The class in dc's MRO that declares a field (a subclass redeclaring a library key makes it ours)."""
    return next((c for c in dc.__mro__ if name in c.__dict__.get("__annotations__", {})), dc)


def _yaml_comments(recipe_dir: Path) -> dict[str, str]:
    """key -> its one-line comment in the recipe's shipped YAMLs (config_tiny.yaml first): the help text of a
    key whose dataclass field has none."""
    from .commented_yaml import comments

    out: dict[str, str] = {}
    for path in sorted(recipe_dir.glob("config_*.yaml"), key=lambda p: (p.name != "config_tiny.yaml", p.name)):
        for key, text in comments(path).items():
            out.setdefault(key, text)
    return out


def short_help(types_: tuple[type, ...], prog: str | None = None) -> str:
    """`--help`: --config and the recipe's own keys, each with its help text and default, then one line per
    library config class (TrainingArguments, SFTConfig, ...) whose keys `--help-all` lists in full."""
    prog = prog or Path(sys.argv[0]).as_posix()
    lines = [f"usage: python {prog} --config FILE.yaml [--key value ...]", "",
             "Every key can be set in the YAML or on the command line (the command line wins).", "",
             "  --config FILE  a YAML of key: value for the keys below (the recipe's config_*.yaml files)"]
    library: dict[str, int] = {}
    comments = _yaml_comments(Path(prog).parent)
    for dc in types_:
        ours = []
        for f in dataclasses.fields(dc):
            if not f.init:
                continue
            owner = _owner(dc, f.name)
            if owner.__module__.split(".")[0] in LIBRARIES:
                name = f"{owner.__module__.split('.')[0]}.{owner.__name__}"
                library[name] = library.get(name, 0) + 1
                continue
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            if isinstance(default, str) and ("\n" in default or len(default) > 60):  # a template: its start
                default = repr(default[:40]) + "..."
            kind = f.type if isinstance(f.type, str) else _type_name(f.type)
            text = f.metadata.get("help", "")
            if not text or text.startswith("must be "):  # the shipped YAMLs comment every key: say that
                text = "; ".join(x for x in (comments.get(f.name), text) if x)
            ours.append(f"  --{f.name} {kind.replace(' ', '')}  {text} (default: {default})")
        if ours:
            lines += ["", f"{dc.__name__}:", *ours]
    if library:
        public = ", ".join(n for n in library if not n.split(".")[-1].startswith("_"))
        lines += ["", f"plus {sum(library.values())} keys of {public} (learning_rate, max_steps, "
                      "per_device_train_batch_size, ...): `--help-all` lists them all."]
    return "\n".join(lines)


def parse(types_: tuple[type, ...], argv: list[str] | None = None) -> tuple:
    """Parse `--config FILE` and `--key value` overrides into instances of `types_` (in that order).
    `-h/--help` prints the recipe's own keys (short_help); `--help-all` argparse's full list."""
    from trl import TrlParser

    argv = list(sys.argv[1:] if argv is None else argv)
    typed = list(argv)  # as the user gave it (settle_argv below adds keys of its own)
    config = None
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise UserError("--config needs a path to a YAML file")
        config = argv[i + 1]
        data = check_yaml(config, types_)
        _check_values({k: v for k, v in data.items() if _where(k, argv, None) != "command line"}, types_, config)  # before a library's __post_init__ trips on the same value

    class Parser(TrlParser):
        @staticmethod
        def _parse_dataclass_field(parser, field):  # our Check is not an argparse keyword
            if CHECK in field.metadata:
                field = copy.copy(field)
                field.metadata = types.MappingProxyType({k: v for k, v in field.metadata.items() if k != CHECK})
            TrlParser._parse_dataclass_field(parser, field)

    if "-h" in argv or "--help" in argv:
        print(short_help(types_))
        raise SystemExit(0)
    if "--help-all" in argv:
        Parser(types_).print_help()
        raise SystemExit(0)
    _check_values(_argv_values(argv, types_), types_, "command line")  # as the YAML's: before any __post_init__
    for dc in types_:  # keys that depend on the hardware are settled before any __post_init__ runs on them
        if hasattr(dc, "settle_argv"):
            try:
                argv = dc.settle_argv(argv)
            except UserError as err:  # a YAML value was checked above: what is left came from the command line
                raise UserError(f"{_where('precision', argv, config)}: {err}") from None
    parser = Parser(types_)

    # argparse reports a bad override with usage text and exit 2; make it the same one line.
    def _error(message: str):
        raise UserError(f"command line: {message}")

    parser.error = _error  # type: ignore[method-assign]
    try:
        parsed = parser.parse_args_and_config(argv)
    except (ValueError, TypeError, KeyError, AttributeError, OSError, ImportError) as err:
        # unused arguments, or a library's __post_init__ rejecting a value (TrainingArguments reads a path it is
        # given, e.g. accelerator_config, and raises FileNotFoundError): one line naming the key where we can
        raise UserError(_library_message(err, typed, config)) from None
    for obj in parsed:
        if dataclasses.is_dataclass(obj):
            bad = problems({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}, checks_of(obj))
            if bad:
                key, message = bad[0]
                raise UserError(f"{_where(key, argv, config)}: {key} {message}")
    check_paths([obj for obj in parsed if dataclasses.is_dataclass(obj)], lambda key: _where(key, argv, config))
    return tuple(parsed)


# --- paths ------------------------------------------------------------------------------------------------------

CHECKOUT = Path(__file__).resolve().parents[2]  # the repository a run's code comes from


def expand(value: str, key: str, where: str) -> str:
    """`~` and `$VARS` expanded as a shell would; an unset variable is an error, not a folder named `$X`."""
    import os
    import re

    out = os.path.expandvars(os.path.expanduser(value))
    left = re.search(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", out)
    if left:
        raise UserError(f"{where}: {key} {value!r}: the variable ${left.group(1)} is not set")
    return out


def _input_paths(objs: list, where) -> dict[str, Path]:
    """The local paths a stage reads: its `*_dir` keys (but its outputs') and the local entries of `sources`."""
    out = {}
    for obj in objs:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.name.endswith("_dir") and "output" not in f.name and f.name != "logging_dir" and \
                    isinstance(value, str) and value:
                out[f.name] = Path(value)
            elif f.name == "sources" and isinstance(value, (list, tuple)):
                for spec in value:
                    if isinstance(spec, str) and not spec.startswith(("default", "hub:")) and \
                            Path(spec).expanduser().exists():
                        out.setdefault(f"sources {spec}", Path(spec).expanduser())
    return out


def check_paths(objs: list, where: Callable[[str], str]) -> None:
    """Expand every `*_dir` key in place, and refuse an `output_dir` that cannot be a run's own folder: empty,
    `.` or `..`, the working folder, the checkout or a folder above either (a run writes `<out>.tmp` beside its
    output, and --overwrite replaces it), or a folder the stage reads (an input, inside one, or holding one)."""
    for obj in objs:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.name.endswith("_dir") and isinstance(value, str):
                setattr(obj, f.name, expand(value, f.name, where(f.name)))
    out = next((getattr(o, "output_dir") for o in objs if isinstance(getattr(o, "output_dir", None), str)), None)
    if out is None:
        return
    at = where("output_dir")
    if not out.strip() or Path(out).name in ("", ".", ".."):
        raise UserError(f"{at}: output_dir {out!r} names no folder of its own: give one such as outputs/my_run")
    target = Path(out).resolve()
    for name, place in (("the working folder", Path.cwd().resolve()), ("the checkout", CHECKOUT)):
        if target == place or target in place.parents:
            raise UserError(f"{at}: output_dir {out} is {name}{'' if target == place else ' or above it'}: "
                            "give a folder of its own such as outputs/my_run")
    for key, path in _input_paths(objs, where).items():
        source = path.resolve()
        relation = ("is" if target == source else "is inside" if source in target.parents
                    else "holds" if target in source.parents else None)
        if relation:  # blamed on whichever of the two the user typed
            typed = at if at == "command line" else where(key.split()[0])
            named = key if key.startswith("sources ") else f"{key} ({path})"
            raise UserError(f"{typed}: output_dir {out} {relation} {named}, which this run reads: give "
                            "the output a folder of its own")


def _library_message(err: Exception, argv: list[str], config: str | None) -> str:
    lines = str(err).strip().splitlines() or [type(err).__name__]
    if isinstance(err, OSError) and err.filename is not None:
        flag = next((a for a, v in zip(argv, argv[1:]) if a.startswith("--") and v == err.filename), None)
        key = flag[2:] if flag else next((a[2:].split("=", 1)[0] for a in argv
                                           if a.startswith("--") and a.endswith(f"={err.filename}")), None)
        what = f"{err.strerror or 'cannot read'}: {err.filename}"
        return f"command line: {key} {what}" if key else f"{config or 'command line'}: {what}"
    flags = sorted({a[2:].split("=", 1)[0] for a in argv if a.startswith("--") and a != "--config"})
    if isinstance(err, (AttributeError, TypeError, KeyError)) and len(flags) == 1:
        # a library read the value as the wrong shape (--deepspeed -1: an int where a JSON object was expected)
        return f"command line: {flags[0]}: not a value it can use ({type(err).__name__}: {lines[0]})"
    return f"command line: {lines[0]}"


def _argv_values(argv: list[str], types_: tuple[type, ...]) -> dict:
    """The checked keys' values given on the command line (`--key v [v ...]` or `--key=v`), numbers as numbers:
    a library's __post_init__ divides by some of them (GRPO's num_generations) before parse could check it."""
    checked_keys = {k for tp in types_ for k in checks_of(tp) if k in {f.name for f in dataclasses.fields(tp)}}
    out: dict = {}
    for i, arg in enumerate(argv):
        if not arg.startswith("--"):
            continue
        key, eq, value = arg[2:].partition("=")
        key = key.replace("-", "_")
        if key not in checked_keys:
            continue
        if eq:
            values = [value]
        else:  # the values up to the next flag (a negative number is a value, not a flag)
            values = []
            for v in argv[i + 1:]:
                if v.startswith("--"):
                    break
                values.append(v)
        numbers = [_number(v) for v in values]
        out[key] = numbers[0] if len(numbers) == 1 else numbers
    return out


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _check_values(data: dict, types_: tuple[type, ...], where: str) -> None:
    for tp in types_:
        bad = problems(data, checks_of(tp))
        if bad:
            raise UserError(f"{where}: {bad[0][0]} {bad[0][1]}")


def to_dict(*objs: Any) -> dict:
    """The resolved config of a run, as plain YAML-able values (saved beside every output)."""
    out: dict = {}
    for obj in objs:
        d = obj.to_dict() if hasattr(obj, "to_dict") else dataclasses.asdict(obj)
        for k, v in d.items():
            if k.endswith("token") or k in {"hub_token", "push_to_hub_token"}:
                continue  # a token is never written anywhere
            out[k] = _plain(v)
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set)):
        return [_plain(x) for x in v]
    if hasattr(v, "value"):
        return _plain(v.value)
    return str(v)


def peek(key: str, default: str, argv: list[str] | None = None) -> str:
    """One key's value before full parsing (`--key v` wins over the YAML), for what must be settled before the
    config class is built: precision's hardware check, and 06_rlhf/online.py's `algorithm` (GRPOConfig or RLOOConfig)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, arg in enumerate(argv):
        if arg == f"--{key}" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(f"--{key}="):
            return arg.split("=", 1)[1]
    if "--config" in argv and argv.index("--config") + 1 < len(argv):
        path = Path(argv[argv.index("--config") + 1])
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError:
                return default  # parse() reports the YAML error with its line
            if isinstance(data, dict) and key in data:
                return str(data[key])
    return default
