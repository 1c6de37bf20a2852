"""Stage 03's schedule, shared with the experiments: decay to min_lr_ratio x the peak, the user's own kwargs win,
and polynomial (which DeepSpeed's ZeRO optimizer cannot run) becomes cosine_with_min_lr with the same floor."""

from types import SimpleNamespace

import torch
from transformers import get_scheduler

from fromscratch.experiments import experiment
from fromscratch.training import lr_schedule


def stand_in(kind, deepspeed=None, **kwargs):  # the attributes of TrainingArguments the schedule reads
    return SimpleNamespace(lr_scheduler_type=kind, learning_rate=1e-2, lr_scheduler_kwargs=kwargs,
                           deepspeed_plugin=deepspeed, process_index=0)


def final_lr(kind, kwargs, steps=100):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-2)
    sched = get_scheduler(kind, opt, num_warmup_steps=5, num_training_steps=steps, scheduler_specific_kwargs=kwargs)
    for _ in range(steps):
        opt.step()
        sched.step()
    return opt.param_groups[0]["lr"]


def test_both_schedules_end_at_the_floor():
    for kind in ("polynomial", "cosine_with_min_lr"):
        args = stand_in(kind)
        lr_schedule.apply(args, 0.1)
        assert abs(final_lr(kind, args.lr_scheduler_kwargs) - 1e-3) < 1e-9, kind


def test_the_users_own_floor_wins_and_other_schedules_are_left_alone():
    args = stand_in("polynomial", lr_end=5e-4)
    lr_schedule.apply(args, 0.1)
    assert args.lr_scheduler_kwargs == {"lr_end": 5e-4, "power": 1.0}
    args = stand_in("linear")
    lr_schedule.apply(args, 0.1)
    assert args.lr_scheduler_kwargs == {}


def test_under_deepspeed_polynomial_becomes_cosine_to_the_same_floor(capsys):
    args = stand_in("polynomial", deepspeed=object())
    lr_schedule.apply(args, 0.1)
    assert args.lr_scheduler_type == "cosine_with_min_lr" and args.lr_scheduler_kwargs == {"min_lr_rate": 0.1}
    assert "[schedule] polynomial does not run under DeepSpeed" in capsys.readouterr().out


def test_an_experiment_trains_with_stage_03s_schedule(tmp_path):
    cfg = {"learning_rate": 0.02, "min_lr_ratio": 0.25, "lr_scheduler_type": "polynomial", "use_cpu": True,
           "report_to": "none"}
    args = experiment.training_args(cfg, tmp_path)
    assert args.lr_scheduler_kwargs == {"lr_end": 0.005, "power": 1.0}
    # a sweep trial with another peak: the floor follows it, the YAML's own kwargs still win
    assert lr_schedule.floor_kwargs(args.lr_scheduler_type, 0.04, 0.25) == {"lr_end": 0.01, "power": 1.0}
    assert lr_schedule.floor_kwargs("polynomial", 0.04, 0.25, '{"power": 2.0}') == {"power": 2.0, "lr_end": 0.01}
