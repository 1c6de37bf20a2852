"""torch_compile: `auto` compiles where the run repays the compile on this hardware (the table in
src/fromscratch/pretraining/torch_compile.py), `true`/`false` are obeyed, the library always sees a bool, and a compiled
run compiles its training graph once: whole batches, and evaluation on the uncompiled module."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from conftest import ROOT
from fromscratch.config import UserError, parse
from fromscratch.pretraining import torch_compile
from fromscratch.pretraining.torch_compile import decide
from fromscratch.training import precision

TINY = ROOT / "recipes/03_pretrain/config_tiny.yaml"


def _pretrain_types():
    name = "compile_pretrain_recipe"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "recipes/03_pretrain/run.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    m = sys.modules[name]
    return m.ModelArguments, m.DataArguments, m.SpikeGuardArguments, m.BatchRampArguments, m.PretrainArguments


@pytest.mark.parametrize("argv,request_,built", [
    ([], "auto", False),  # the shipped YAML says auto: built off, decided once the run's size is known
    (["--torch_compile", "true"], "true", True),
    (["--torch_compile", "False"], "false", False),
])
def test_the_switch_reaches_the_library_as_a_bool(argv, request_, built, tmp_path):
    *_, args = parse(_pretrain_types(), ["--config", str(TINY), "--output_dir", str(tmp_path), *argv])
    assert args.torch_compile_request == request_ and args.torch_compile is built
    assert (args.torch_compile_backend == "inductor") is built  # __post_init__ ran on the bool, once
    assert args.to_dict()["torch_compile"] == request_  # config.yaml keeps the request: a rerun decides again


def test_a_yaml_bool_is_accepted_and_a_bad_value_is_one_line(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(TINY.read_text().replace("torch_compile: auto ", "torch_compile: true "))
    *_, args = parse(_pretrain_types(), ["--config", str(config), "--output_dir", str(tmp_path / "o")])
    assert args.torch_compile is True
    with pytest.raises(UserError, match="torch_compile.*'maybe'"):
        parse(_pretrain_types(), ["--config", str(TINY), "--output_dir", str(tmp_path / "o"), "--torch_compile", "maybe"])


PER_TOKEN = 9.5e6  # the tiny preset at block 256 (6 N + 12 L H T)


def test_auto_follows_the_hardware_table_and_the_run_length():
    # The demo-sized run (1.1M tokens) against a 2-core native-bf16 CPU: the 25 s compile is not repaid...
    assert not decide("auto", "cpu-bf16", 1.1e6, PER_TOKEN).on
    # ...a run ten times longer repays it, and the reason says by how much.
    long = decide("auto", "cpu-bf16", 11e6, PER_TOKEN)
    assert long.on and "saves" in long.reason and "cpu-bf16" in long.reason
    # On a CPU without native bf16 compiled steps are slower (0.91x): never on, however long.
    assert not decide("auto", "cpu", 1e12, PER_TOKEN).on
    assert not decide("auto", "other accelerator", 1e12, PER_TOKEN).on  # no measurement: off
    for on in (True, False):  # an explicit choice is obeyed
        assert decide(str(on).lower(), "cpu", 1, PER_TOKEN) == torch_compile.Decision(on, str(on).lower(),
                                                                                       "set in the config")
    assert not decide("auto", "cpu-bf16", 1e12, PER_TOKEN, deepspeed=True).on
    assert not decide("auto", "cpu-bf16", 1e12, PER_TOKEN, batch_ramp=True).on


def test_the_real_scale_gpu_configs_compile(monkeypatch):
    """config_125m's 2.2B tokens on one H100 row of planning.GPUS: hours of eager time, minutes of compile."""
    monkeypatch.setattr(torch_compile, "eager_flops", lambda kind: 989e12 * torch_compile.GPU_MFU)
    from fromscratch.modeling import PRESETS
    from fromscratch.planning import parameters

    n = parameters(PRESETS["125m"], 32000)
    assert decide("auto", "cuda", 4200 * 256 * 2048, torch_compile.flops_per_token(n, 12, 768, 2048)).on
    assert not decide("auto", "cuda", 2 * 4 * 2048, torch_compile.flops_per_token(n, 12, 768, 2048)).on  # a smoke run


def test_hardware_kind_follows_the_precision_seam(monkeypatch):
    for native in (True, False):
        monkeypatch.setattr(precision, "bf16_is_fast", lambda use_cpu, n=native: n)
        assert torch_compile.hardware_kind(use_cpu=True) == ("cpu-bf16" if native else "cpu")


@pytest.mark.slow
def test_a_compiled_run_compiles_training_once_and_never_for_eval(tmp_path, monkeypatch):
    """Regional compile of a nano model, 5 blocks left over (a smaller last batch would recompile): train two
    epochs with evaluations, then evaluate again: no graph is compiled after the first training step's."""
    from torch._dynamo.utils import counters
    from transformers import AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments

    from fromscratch.modeling import build_config

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    monkeypatch.setenv("ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION", "true")  # what settle() sets (restored after)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(build_config("llama", "nano", 128, 32, bos_token_id=1, eos_token_id=2,
                                                          pad_token_id=0))
    data = [{"input_ids": torch.randint(3, 128, (32,)).tolist()} for _ in range(8 * 4 + 5)]
    for row in data:
        row["labels"] = row["input_ids"]
    args = TrainingArguments(output_dir=str(tmp_path), num_train_epochs=2, per_device_train_batch_size=8,
                             per_device_eval_batch_size=6, eval_strategy="steps", eval_steps=3, save_strategy="no",
                             report_to="none", disable_tqdm=True, use_cpu=True)
    train, decision = torch_compile.settle(args, model, data_set(data), 8 * 32)
    assert decision.requested == "false" and not decision.on  # TrainingArguments' own False, obeyed
    args.torch_compile_request = "true"
    train, decision = torch_compile.settle(args, model, data_set(data), 8 * 32)
    assert decision.on and decision.regional and decision.dropped_blocks == 5 and len(train) == 32
    counters.clear()
    seen = {}

    class AfterFirstStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            seen.setdefault("graphs", counters["stats"]["unique_graphs"])

    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=data_set(data),
                      callbacks=[AfterFirstStep()])
    trainer.train()
    assert trainer.state.global_step == 8 and seen["graphs"] > 0  # 2 epochs of 4 whole batches, compiled
    assert counters["stats"]["unique_graphs"] == seen["graphs"]  # no recompile later (evaluations included)
    trainer.evaluate()
    assert counters["stats"]["unique_graphs"] == seen["graphs"]


def data_set(rows):
    import datasets

    return datasets.Dataset.from_list(rows)
