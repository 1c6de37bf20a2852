"""precision: `auto` follows the hardware check; the choice is made before any config is built, so every stage's
config class (TrainingArguments, SFT/Reward/GRPO/RLOO/DPO/PPO configs) is built once, in either precision, on
any machine. bf16 is forced through the hardware check's seam where the CPU lacks it (issue 22: the bf16 path
had never run on the machine the suite was written on), and a real bf16 training run checks the numbers."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

from conftest import ROOT
from fromscratch.config import UserError, parse
from fromscratch.experiments import experiment
from fromscratch.training import precision

BOTH = pytest.mark.parametrize("native_bf16", [True, False], ids=["bf16-hardware", "fp32-hardware"])


@pytest.fixture
def hardware(monkeypatch):
    """Force the hardware check's answer (bf16 native or not) for this test."""
    def force(native_bf16: bool):
        monkeypatch.setattr(precision, "bf16_is_fast", lambda use_cpu: native_bf16)
    return force


@BOTH
def test_auto_follows_the_hardware_check_and_explicit_choices_win(hardware, native_bf16):
    hardware(native_bf16)
    assert precision.resolve("auto", use_cpu=True) == ("bf16" if native_bf16 else "fp32")
    assert precision.resolve("fp32", use_cpu=True) == "fp32" and precision.resolve("bf16", use_cpu=True) == "bf16"
    with pytest.raises(UserError, match="precision must be one of"):
        precision.resolve("int8", use_cpu=True)


@BOTH
def test_gpu_config_without_a_gpu_trains_on_the_cpu_and_says_so(hardware, monkeypatch, native_bf16):
    hardware(native_bf16)
    monkeypatch.setattr(precision, "accelerator_present", lambda: False)
    choice = precision.choose("auto", use_cpu=False)
    assert choice.use_cpu is True and choice.precision == ("bf16" if native_bf16 else "fp32")
    assert "no GPU here" in choice.note and choice.precision in choice.note
    assert precision.choose("auto", use_cpu=True).note is None  # a CPU config is not overruled
    monkeypatch.setattr(precision, "accelerator_present", lambda: True)
    assert precision.choose("auto", use_cpu=False) == precision.Choice(choice.precision, False, None)


def _recipe(recipe: str, script: str = "run.py"):
    name = f"precision_recipe_{recipe}_{script[:-3]}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "recipes" / recipe / script)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses resolve their annotations through the module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _types(recipe: str, config: str) -> tuple:
    if recipe == "06_rlhf":  # one script per algorithm family; online.py's YAML names grpo or rloo
        algorithm = yaml.safe_load((ROOT / config).read_text()).get("algorithm")
        if algorithm:
            m = _recipe(recipe, "online.py")
            return m.OnlineArguments, m.CONFIGS[algorithm][0]
        if "dpo" in config:
            m = _recipe(recipe, "dpo.py")
            return m.PairArguments, m.DPOArguments
        m = _recipe(recipe)
        return m.PPOPromptArguments, m.PPOArguments
    m = _recipe(recipe)
    if recipe == "03_pretrain":
        return m.ModelArguments, m.DataArguments, m.SpikeGuardArguments, m.BatchRampArguments, m.PretrainArguments
    if recipe == "04_sft":
        return m.DataArguments, m.LoraArguments, m.SFTArguments
    return m.DataArguments, m.RewardArguments


STAGE_CONFIGS = [(p.parent.name, str(p.relative_to(ROOT)))
                 for recipe in ("03_pretrain", "04_sft", "05_reward", "06_rlhf")
                 for p in sorted((ROOT / "recipes" / recipe).glob("config_*.yaml"))
                 if not p.name.startswith("config_tokenize")]  # the tokenize step's configs: no training


@BOTH
@pytest.mark.parametrize("recipe,config", STAGE_CONFIGS, ids=[c.split("/", 1)[1] for _, c in STAGE_CONFIGS])
def test_every_stage_config_is_built_once_in_either_precision(hardware, recipe, config, native_bf16, tmp_path,
                                                              monkeypatch):
    """The path GRPO/RLOO crashed on (a second __post_init__ over derived values), in bf16 and in fp32."""
    hardware(native_bf16)
    monkeypatch.chdir(ROOT)
    *_, args = parse(_types(recipe, config), ["--config", config, "--output_dir", str(tmp_path / "out")])
    expected = "bf16" if native_bf16 else "fp32"
    assert (args.bf16, args.fp16, args.mixed_precision) == (native_bf16, False, "bf16" if native_bf16 else "no")
    assert precision.apply(args, args.precision) == (args, expected)
    yaml_cpu = yaml.safe_load((ROOT / config).read_text()).get("use_cpu", False)
    assert args.use_cpu == (yaml_cpu or not precision.accelerator_present())
    if hasattr(args, "steps_per_generation"):  # GRPO/RLOO derive the generation batch exactly once
        assert args.generation_batch_size == args.per_device_train_batch_size * args.world_size * \
            args.steps_per_generation


def test_args_built_without_the_choice_are_refused_not_patched(hardware):
    hardware(True)
    args = TrainingArguments(output_dir="unused", use_cpu=True, bf16=False, report_to="none")
    with pytest.raises(RuntimeError, match="resolves to bf16"):
        precision.apply(args, "auto")


@BOTH
def test_experiment_args_follow_the_choice(hardware, native_bf16, tmp_path):
    hardware(native_bf16)
    cfg = experiment.load_pretrain_yaml(ROOT / "recipes/03_pretrain/config_tiny.yaml")
    args = experiment.training_args(cfg, tmp_path)
    assert args.bf16 is native_bf16 and args.mixed_precision == ("bf16" if native_bf16 else "no")


def test_a_real_bf16_run_computes_in_bf16_and_learns(tmp_path):
    """bf16 autocast through the Trainer for real (native on AVX512-BF16/AMX CPUs and GPUs, emulated and slower
    elsewhere, still correct): activations in bf16, fp32 master weights, and the loss goes down."""
    from fromscratch.modeling import build_config

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(build_config("llama", "nano", 256, 32, bos_token_id=1, eos_token_id=2,
                                                          pad_token_id=0))
    dtypes = set()
    model.model.layers[0].mlp.down_proj.register_forward_hook(lambda mod, inp, out: dtypes.add(out.dtype))
    block = torch.randint(3, 40, (32,)).tolist()  # one repeated block: learnable in a few steps
    data = [{"input_ids": block, "labels": block} for _ in range(64)]
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=12, per_device_train_batch_size=8, learning_rate=1e-2,
                             logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
                             **precision.choose("bf16", use_cpu=True).kwargs())
    trainer = Trainer(model=model, args=args, train_dataset=data)
    trainer.train()
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    assert dtypes == {torch.bfloat16}
    assert next(model.parameters()).dtype == torch.float32
    assert all(map(torch.isfinite, torch.tensor(losses))) and losses[-1] < 0.5 * losses[0], losses


def test_the_record_is_what_the_accelerator_ran():
    """A trainer whose Accelerator missed the config's bf16 (TRL 1.12's PPOTrainer did) cannot record bf16."""
    from types import SimpleNamespace

    def trainer(mixed):
        return SimpleNamespace(accelerator=SimpleNamespace(mixed_precision=mixed))

    assert precision.computed_in(trainer("bf16"), "bf16") == "bf16"
    assert precision.computed_in(trainer("no"), "fp32") == "fp32"
    with pytest.raises(RuntimeError, match="settled as bf16 but the trainer's Accelerator ran fp32"):
        precision.computed_in(trainer("no"), "bf16")
