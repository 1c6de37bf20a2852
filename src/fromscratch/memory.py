"""Memory per GPU of a training run, and the micro-batch x gradient accumulation that fits it.

Model states (bytes per parameter N, over g data-parallel GPUs; Rajbhandari et al. 2020, "ZeRO", with K = 12 for
mixed-precision Adam: fp32 master weights, momentum and variance):
- ddp (Trainer with bf16 autocast): fp32 weights 4N + the bf16 weight copies autocast saves for backward 2N,
  fp32 gradients 4N, AdamW moments 8N.
- zero1: bf16 weights 2N, bf16 gradients 2N, optimizer 12N / g.      zero2: 2N + (2 + 12)N / g.
- zero3: (2 + 2 + 12)N / g plus the layers gathered for compute (two layers in flight: current + prefetched).
- zero3_offload: optimizer, gradients and weights live in CPU memory; the GPU holds only the gathered layers.
In fp32 the master copy disappears: 4 + 4 + 8 bytes per parameter, sharded the same way.

Activations (bytes per token, per layer, h hidden, f FFN width, kv the key/value width, V the vocabulary) were
measured with autograd's saved-tensor hooks on the Llama of fromscratch.modeling with SDPA attention (no
sequence^2 score matrix is stored, as with flash attention): under bf16 autocast ~39h + 9.5f + 5kv per layer
plus ~36h + 4.5V outside the layers (final norm, logits upcast to fp32 for the loss); in fp32 4 x (8h + 4f + 2kv)
per layer plus 4 x (3h + V). With activation checkpointing a layer keeps only its fp32 input (4h) and one layer's
activations are rebuilt at a time. tests/test_memory.py checks these against a fresh measurement (within 25%).

What a real run adds on top (CUDA context, NCCL buffers, allocator fragmentation, temporary buffers) is covered
by a margin: a plan only fills 90% of the GPU's memory minus 1 GiB.
"""

from __future__ import annotations

from dataclasses import dataclass

from .modeling import Shape

GIB = 1024**3
STRATEGIES = ("ddp", "zero1", "zero2", "zero3", "zero3_offload")
# The accelerate config that runs each strategy (ZeRO-1 has none of its own: ZeRO-2 costs the same traffic).
ACCELERATE_CONFIGS = {"ddp": "multi_gpu", "zero1": "deepspeed_zero2", "zero2": "deepspeed_zero2",
                      "zero3": "deepspeed_zero3", "zero3_offload": "deepspeed_zero3_offload"}


def usable_bytes(gpu_memory_gib: float) -> float:
    return gpu_memory_gib * GIB * 0.9 - GIB


def layer_parameters(shape: Shape) -> int:
    h, f = shape.hidden, shape.ffn
    kv = (shape.kv_heads or shape.heads) * (h // shape.heads)
    return 2 * h * h + 2 * h * kv + 3 * h * f + 2 * h


def states(params: float, shape: Shape, strategy: str, gpus: int, precision: str = "bf16") -> dict[str, float]:
    """Bytes per GPU for weights, gradients and optimizer states (and what is parked in CPU memory)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy}")
    mixed = precision in ("bf16", "fp16")
    w, g, k = (2, 2, 12) if mixed else (4, 4, 8)
    gathered = 2 * w * layer_parameters(shape)
    if strategy == "ddp":
        return {"weights": (6 if mixed else 4) * params, "gradients": 4 * params, "optimizer": 8 * params, "cpu": 0.0}
    if strategy == "zero1":
        return {"weights": w * params, "gradients": g * params, "optimizer": k * params / gpus, "cpu": 0.0}
    if strategy == "zero2":
        return {"weights": w * params, "gradients": g * params / gpus, "optimizer": k * params / gpus, "cpu": 0.0}
    if strategy == "zero3":
        return {"weights": w * params / gpus + gathered, "gradients": g * params / gpus,
                "optimizer": k * params / gpus, "cpu": 0.0}
    return {"weights": gathered, "gradients": 0.0, "optimizer": 0.0, "cpu": (w + g + k) * params / gpus}


def activations(shape: Shape, vocab_size: int, seq_len: int, micro_batch: int, *, precision: str = "bf16",
                checkpointing: bool = False) -> float:
    """Bytes of activations kept for backward for one micro-batch (see the module docstring for the terms)."""
    h, f = shape.hidden, shape.ffn
    kv = (shape.kv_heads or shape.heads) * (h // shape.heads)
    if precision in ("bf16", "fp16"):
        layer, outside = 39 * h + 9.5 * f + 5 * kv, 36 * h + 4.5 * vocab_size
    else:
        layer, outside = 4 * (8 * h + 4 * f + 2 * kv), 4 * (3 * h + vocab_size)
    per_token = (shape.layers * 4 * h + layer if checkpointing else shape.layers * layer) + outside
    return per_token * seq_len * micro_batch


@dataclass
class Fit:
    strategy: str
    weights: float
    gradients: float
    optimizer: float
    cpu: float
    activations: float  # at the chosen micro-batch (or at micro-batch 1 when nothing fits)
    micro_batch: int  # 0: does not fit even at micro-batch 1 with checkpointing
    accumulation: int
    checkpointing: bool

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations

    @property
    def fits(self) -> bool:
        return self.micro_batch > 0


def fit(params: float, shape: Shape, vocab_size: int, seq_len: int, global_batch: int, gpus: int,
        gpu_memory_gib: float, strategy: str, precision: str = "bf16") -> Fit:
    """Largest power-of-two micro-batch that fits (without checkpointing if possible) and the accumulation
    that makes micro_batch x accumulation x gpus = global_batch sequences."""
    st = states(params, shape, strategy, gpus, precision)
    budget = usable_bytes(gpu_memory_gib) - st["weights"] - st["gradients"] - st["optimizer"]
    per_gpu = max(1, global_batch // gpus)
    for checkpointing in (False, True):
        micro = 1 << (per_gpu.bit_length() - 1)
        while micro >= 1:
            act = activations(shape, vocab_size, seq_len, micro, precision=precision, checkpointing=checkpointing)
            if per_gpu % micro == 0 and act <= budget:
                return Fit(strategy, **st, activations=act, micro_batch=micro, accumulation=per_gpu // micro,
                           checkpointing=checkpointing)
            micro //= 2
    act = activations(shape, vocab_size, seq_len, 1, precision=precision, checkpointing=True)
    return Fit(strategy, **st, activations=act, micro_batch=0, accumulation=0, checkpointing=True)


def fits(params: float, shape: Shape, vocab_size: int, seq_len: int, global_batch: int, gpus: int,
         gpu_memory_gib: float, precision: str = "bf16") -> list[Fit]:
    return [fit(params, shape, vocab_size, seq_len, global_batch, gpus, gpu_memory_gib, s, precision)
            for s in STRATEGIES]


def recommend(rows: list[Fit]) -> Fit | None:
    """The cheapest way to fit: least sharding first, checkpointing only when no sharding avoids it, offload last."""
    order = [r for r in rows if r.strategy not in ("zero1", "zero3_offload")]
    for want_checkpointing in (False, True):
        for row in order:
            if row.fits and row.checkpointing == want_checkpointing:
                return row
    offload = [r for r in rows if r.strategy == "zero3_offload" and r.fits]
    return offload[0] if offload else None
