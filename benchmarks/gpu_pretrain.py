"""GPU check of the pretraining recipe: tokens/s, MFU against the GPU's bf16 peak, and peak memory, per preset
and variant: eager and torch.compile in one process, DDP and FSDP through `accelerate launch` on every GPU.

    python benchmarks/gpu_pretrain.py                      # on a GPU machine: 125M and 1B, all four variants
    python benchmarks/gpu_pretrain.py --presets nano --steps 4 --vocab 1024 --gpu cpu   # the same path on CPU

Runs recipes/03_pretrain/run.py itself (its real-scale config: bf16 where the hardware has it, SDPA attention,
which uses the flash kernels on the GPU, fused AdamW, packed blocks), once per preset, on the embedded corpus
with a tokenizer trained by recipes/02_tokenizer, and reads the figures back from each run's run_info.json.
MFU = tokens/s x (6 N + 12 L H T) FLOPs per token / (the GPU's dense bf16 peak (planning.GPUS) x processes).
The recipe's tokens/s is the median over logging intervals, so start-up and the first (slow) steps do not count.
Variants: `eager` (torch_compile false), `compile` (torch_compile true: the whole model, as `auto` compiles;
its cold compile is reported as compile_seconds), `ddp` and `fsdp` (accelerate_configs/multi_gpu.yaml and
fsdp.yaml with one process per GPU, eager, so the two compare on sharding alone; on CPU: 2 gloo processes).
Figures go to stdout and, when $OUT is set (the device machine), to $OUT/gpu_pretrain.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

sys.path.insert(0, str(ROOT / "benchmarks"))

from common import flops_per_token  # noqa: E402
from fromscratch import planning  # noqa: E402
from fromscratch.modeling import PRESETS  # noqa: E402

CONFIGS = {"125m": "config_125m.yaml", "1b": "config_1b.yaml"}  # other presets run with the 125M config
VARIANTS = {"eager": None, "compile": None, "ddp": "multi_gpu.yaml", "fsdp": "fsdp.yaml"}  # -> accelerate config


def launcher(variant: str, cpu: bool) -> list[str]:
    """`accelerate launch` for the distributed variants: one process per GPU (2 gloo processes on CPU)."""
    if VARIANTS[variant] is None:
        return [sys.executable]
    import torch

    config = "cpu_ddp.yaml" if cpu and variant == "ddp" else VARIANTS[variant]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ROOT / "accelerate_configs" / config),
            "--num_processes", str(2 if cpu else torch.cuda.device_count()), "--main_process_port", str(port)]


def run(recipe: str, *args: str, launch: list[str] | None = None) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [*(launch or [sys.executable]), str(ROOT / "recipes" / recipe / "run.py"), *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{recipe} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["125m", "1b"])
    ap.add_argument("--steps", type=int, default=40, help="optimizer steps per preset (logged every 5)")
    ap.add_argument("--batch", type=int, default=None, help="sequences per micro-step (default: the config's)")
    ap.add_argument("--block_size", type=int, default=None, help="tokens per sequence (default: the config's)")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--gpu", default="h200", help=f"peak FLOP/s for MFU: one of {', '.join(planning.GPUS)}, or cpu")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                    help="eager, compile (torch_compile true), ddp, fsdp (accelerate launch, eager)")
    args = ap.parse_args()
    cpu = args.gpu == "cpu"
    if not cpu:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device: run with --gpu cpu for the CPU path")
        print(f"# {torch.cuda.get_device_name(0)}, torch {torch.__version__}, bf16 {torch.cuda.is_bf16_supported()}")
    peak = None if cpu else planning.peak_flops(args.gpu)

    rows = []
    with tempfile.TemporaryDirectory(prefix="fromscratch-gpu-") as work:
        tok = Path(work) / "tokenizer"
        t = time.perf_counter()
        run("02_tokenizer", "--config", "recipes/02_tokenizer/config_32k.yaml", "--sources", "default",
            "--vocab_size", str(args.vocab), "--output_dir", str(tok))
        print(f"# tokenizer ({args.vocab} tokens) trained in {time.perf_counter() - t:.0f} s")
        for preset, variant in ((p, v) for p in args.presets for v in args.variants):
            out = Path(work) / f"{preset}-{variant}"
            overrides = ["--preset", preset, "--sources", "default", "--tokenizer_dir", str(tok),
                         "--max_steps", str(args.steps), "--gradient_accumulation_steps", "1", "--logging_steps", "5",
                         "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none", "--disable_tqdm",
                         "true", "--output_dir", str(out), "--torch_compile", str(variant == "compile").lower()]
            overrides += ["--use_cpu", "true", "--dataloader_num_workers", "0"] if cpu else []
            overrides += ["--per_device_train_batch_size", str(args.batch)] if args.batch else []
            overrides += ["--block_size", str(args.block_size)] if args.block_size else []
            config = CONFIGS.get(preset, "config_125m.yaml")
            t = time.perf_counter()
            launch = launcher(variant, cpu)
            run("03_pretrain", "--config", f"recipes/03_pretrain/{config}", *overrides, launch=launch)
            info = json.loads((out / "run_info.json").read_text())
            m, cfg = info["metrics"], json.loads((out / "config.json").read_text())
            layers, hidden, block = cfg["num_hidden_layers"], cfg["hidden_size"], cfg["max_position_embeddings"]
            tps = m["tokens_per_second"]
            per_token = flops_per_token(m["parameters"], layers, hidden, block)
            processes = int(launch[launch.index("--num_processes") + 1]) if "--num_processes" in launch else 1
            rows.append({
                "preset": preset, "variant": variant, "processes": processes,
                "parameters": m["parameters"], "precision": m["precision"], "block_size": block,
                "tokens_per_second": tps, "mfu": tps * per_token / (peak * processes) if peak and tps else None,
                "peak_gpu_memory_gib": m.get("peak_gpu_memory_gib"), "compile_seconds": m.get("compile_seconds"),
                "steps": m["steps"], "wall_seconds": round(time.perf_counter() - t, 1),
                "shape": f"{layers}x{hidden}", "known_preset": preset in PRESETS,
            })
            r = rows[-1]
            print(f"{preset:>6} {variant:>7} {r['parameters'] / 1e6:8.1f}M  {r['precision']:>5}  {tps:>10,.0f} tokens/s  "
                  f"MFU {'%.1f%%' % (100 * r['mfu']) if r['mfu'] is not None else 'n/a (CPU)':>9}  "
                  f"peak memory {r['peak_gpu_memory_gib'] or 'n/a'} GiB  compile {r['compile_seconds'] or '-'} s  "
                  f"({r['wall_seconds']} s)", flush=True)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_pretrain.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
