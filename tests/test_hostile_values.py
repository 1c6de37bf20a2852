"""Hostile values for every stage's declared keys, generated from the declarations themselves (issue 28): a value
is taken or refused in one line naming the key; never a traceback, whatever the key or the value. A key added to
a stage's dataclasses is covered the day it is added."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fromscratch.config import UserError, checks_of, parse
from test_bad_input import recipe

# Each script a user runs, with the dataclasses its main() parses (in its order).
STAGES = {
    "00_plan": "PlanArguments",
    "01_data": None,  # its Settings lists them
    "02_tokenizer": "TokenizerArguments",
    "03_pretrain/tokenize_corpus.py": "TokenizeArguments ExecutorArguments",
    "03_pretrain": "ModelArguments DataArguments SpikeGuardArguments BatchRampArguments PretrainArguments",
    "04_sft": "DataArguments LoraArguments SFTArguments",
    "05_reward": "DataArguments RewardArguments",
    "06_rlhf": "PPOPromptArguments PPOArguments",
    "06_rlhf/dpo.py": "PairArguments DPOArguments",
    "06_rlhf/online.py": "OnlineArguments GRPOArguments",
    "07_eval": "EvalArguments ProbeArguments",
    "08_sweep": "SweepArguments",
    "09_ablate": "AblateArguments",
    "10_mitigate": "MitigateArguments ProbeArguments",
}


def _types(stage: str) -> tuple[type, ...]:
    mod = recipe(stage)
    if STAGES[stage] is None:
        import typing

        return tuple(typing.get_type_hints(mod.Settings).values())
    return tuple(getattr(mod, name) for name in STAGES[stage].split())


def _keys(types_: tuple[type, ...]) -> list[str]:
    """Every key a user can give: our dataclasses' fields and those of the library classes they extend
    (TrainingArguments' and TRL's too), plus the ones we declare a range for."""
    return sorted({f.name for tp in types_ for f in dataclasses.fields(tp)} | {k for tp in types_ for k in checks_of(tp)})


WORDS = ["nan", "inf", "-inf", "", "-1", "0", "1e400", "-1e-400", "None", "null", "true", "[]", "{}", "~", "$NOPE",
         "/", ".", "..", "1,2", "0x10", "１", "é", "\t", "a\nb", "--", "-"]
VALUES = st.one_of(st.sampled_from(WORDS), st.integers(-10**20, 10**20).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
                   ).filter(lambda v: v.strip() not in ("-h", "--help", "--help-all"))  # asks for help, as it should


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_declared_key_takes_any_value_or_refuses_it_in_one_line(stage):
    types_ = _types(stage)
    keys = _keys(types_)
    assert keys

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(key=st.sampled_from(keys), values=st.lists(VALUES, min_size=1, max_size=2), equals=st.booleans())
    def check(key, values, equals):
        argv = [f"--{key}={values[0]}"] if equals else [f"--{key}", *values]
        try:
            parse(types_, argv)
        except UserError as err:
            text = str(err)
            assert "\n" not in text and text.startswith("command line: "), (argv, text)  # where it was typed
        except SystemExit as stop:  # only -h/--help exits on its own
            raise AssertionError(f"{stage} {argv}: SystemExit({stop.code})") from None
        finally:  # TrainingArguments(deepspeed=...) leaves a process-wide config behind, even half-built
            from transformers.integrations.deepspeed import unset_hf_deepspeed_config

            unset_hf_deepspeed_config()

    check()


@pytest.mark.parametrize("argv,says", [
    (["--deepspeed", "-1"], "command line: deepspeed: not a value it can use (AttributeError"),
    (["--accelerator_config", "nan"], "command line: accelerator_config No such file or directory: nan"),
])
def test_a_library_key_the_library_cannot_use_is_one_line_naming_it(argv, says):
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled, unset_hf_deepspeed_config

    try:
        with pytest.raises(UserError) as err:
            parse(_types("03_pretrain"), argv)
        assert str(err.value).startswith(says)
    finally:
        unset_hf_deepspeed_config()
    assert not is_deepspeed_zero3_enabled()
