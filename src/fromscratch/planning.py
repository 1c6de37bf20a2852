"""Size a model for a budget (Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models").

Three results of the paper are used, each for what it is best at:
- Training compute C ~ 6 N D FLOPs (N parameters, D tokens; forward 2ND + backward 4ND).
- The compute-optimal size: a power law N_opt = k C^a fitted (least squares in log space) to the paper's Table 3
  (Approach 1 projections; the paper's own fit there is a = 0.50), so the planner reproduces that table. It comes
  out at ~20 tokens per parameter.
- The expected loss: Approach 3's parametric fit L(N, D) = E + A / N^alpha + B / D^beta (nats per token on
  MassiveText with the paper's tokenizer: a relative guide for another corpus and tokenizer, not a promise).
  That fit's own optimum puts more weight on data (N ~ C^0.46) and is reported beside the main answer.
Parameter counts include the embeddings (as the paper's do); tied input/output embeddings are counted once.
A concrete shape (layers, hidden, heads, FFN) is searched so its exact parameter count, computed here
analytically for the transformers model `fromscratch.modeling.build_config` makes, is close to the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import UserError
from .modeling import PRESETS, Shape

# Table 3 of Hoffmann et al. 2022: (parameters, FLOPs, tokens) at the compute-optimal frontier (Approach 1).
CHINCHILLA_TABLE3 = [
    (400e6, 1.92e19, 8.0e9),
    (1e9, 1.21e20, 20.2e9),
    (10e9, 1.23e22, 205.1e9),
    (67e9, 5.76e23, 1.5e12),
    (175e9, 3.85e24, 3.7e12),
    (280e9, 9.90e24, 5.9e12),
    (520e9, 3.43e25, 11.0e12),
    (1e12, 1.27e26, 21.2e12),
    (10e12, 1.30e28, 216.2e12),
]
# Approach 3 (Section 3.3): L(N, D) = E + A / N^alpha + B / D^beta.
E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28

# Peak dense bf16 tensor FLOP/s (vendor datasheets, no sparsity) and memory per accelerator.
GPUS = {
    "h100": (989e12, 80), "h200": (989e12, 141), "a100": (312e12, 80), "a100_40gb": (312e12, 40),
    "l40s": (362e12, 48), "mi300x": (1307e12, 192),
}
# GPT-3's (Brown et al. 2020, Table 2.1) batch size in tokens and peak learning rate by size; planned runs
# interpolate them in log space. The first row extends it to the ~1M-parameter CPU models of this project.
GPT3_BATCH_LR = [(1e6, 0.016e6, 3e-3), (125e6, 0.5e6, 6e-4), (350e6, 0.5e6, 3e-4), (760e6, 0.5e6, 2.5e-4),
                 (1.3e9, 1e6, 2e-4), (2.7e9, 1e6, 1.6e-4), (6.7e9, 2e6, 1.2e-4), (13e9, 2e6, 1e-4),
                 (175e9, 3.2e6, 0.6e-4)]


def _fit_table() -> tuple[float, float]:
    """Least squares of log N on log C over Table 3: N_opt = k C^a."""
    xs = [math.log(c) for _, c, _ in CHINCHILLA_TABLE3]
    ys = [math.log(n) for n, _, _ in CHINCHILLA_TABLE3]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    a = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return a, math.exp(my - a * mx)


EXPONENT, COEFFICIENT = _fit_table()


def loss(params: float, tokens: float) -> float:
    """Expected final training loss (nats/token) from the paper's parametric fit."""
    return E + A / params**ALPHA + B / tokens**BETA


def optimal_for_flops(flops: float) -> tuple[float, float]:
    """(parameters, tokens) that spend `flops` compute-optimally."""
    params = COEFFICIENT * flops**EXPONENT
    return params, flops / (6 * params)


def optimal_for_params(params: float) -> tuple[float, float]:
    """(FLOPs, tokens) for which a model of `params` parameters is compute-optimal."""
    flops = (params / COEFFICIENT) ** (1 / EXPONENT)
    return flops, flops / (6 * params)


def optimal_for_tokens(tokens: float) -> tuple[float, float]:
    """(FLOPs, parameters) for which `tokens` training tokens are compute-optimal."""
    # tokens = C / (6 k C^a)  =>  C = (6 k tokens)^(1 / (1 - a))
    flops = (6 * COEFFICIENT * tokens) ** (1 / (1 - EXPONENT))
    return flops, flops / (6 * tokens)


def parametric_optimum(flops: float) -> tuple[float, float]:
    """The parametric fit's own compute-optimal (parameters, tokens) (the paper's eq. 4)."""
    g = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
    params = g * (flops / 6) ** (BETA / (ALPHA + BETA))
    return params, flops / (6 * params)


def flops_for_hardware(gpus: int, gpu_type: str, days: float, mfu: float) -> float:
    return gpus * peak_flops(gpu_type) * mfu * days * 86400


def peak_flops(gpu_type: str) -> float:
    if gpu_type not in GPUS:
        raise UserError(f"gpu_type '{gpu_type}' unknown (have: {', '.join(GPUS)})")
    return GPUS[gpu_type][0]


def wall_seconds(flops: float, gpus: int, gpu_type: str, mfu: float) -> float:
    """Training time when the model FLOPs 6ND run at `mfu` of the hardware's peak."""
    return flops / (gpus * peak_flops(gpu_type) * mfu)


def _interpolate(params: float, column: int) -> float:
    rows = GPT3_BATCH_LR
    if params <= rows[0][0]:
        return rows[0][column]
    if params >= rows[-1][0]:
        return rows[-1][column]
    for lo, hi in zip(rows, rows[1:]):
        if lo[0] <= params <= hi[0]:
            t = math.log(params / lo[0]) / math.log(hi[0] / lo[0])
            return math.exp(math.log(lo[column]) * (1 - t) + math.log(hi[column]) * t)
    raise AssertionError("unreachable")


def batch_tokens(params: float, tokens: float) -> float:
    """GPT-3's batch size for the size, capped so the run still takes at least ~2,000 optimizer steps."""
    return min(_interpolate(params, 1), tokens / 2000)


def learning_rate(params: float) -> float:
    return _interpolate(params, 2)


# --- shapes ---------------------------------------------------------------------------------------------------

def parameters(shape: Shape, vocab_size: int, family: str = "llama", tie_word_embeddings: bool = True) -> int:
    """Exact parameter count of the model `build_config(family, ...)` describes (tied embeddings once)."""
    h, f, n = shape.hidden, shape.ffn, shape.layers
    embeddings = vocab_size * h * (1 if tie_word_embeddings else 2)
    if family == "llama":
        kv = (shape.kv_heads or shape.heads) * (h // shape.heads)
        layer = 2 * h * h + 2 * h * kv + 3 * h * f + 2 * h  # q, o; k, v; gate, up, down; two RMSNorms
        return embeddings + n * layer + h
    if family == "neox":
        layer = (3 * h * h + 3 * h) + (h * h + h) + (2 * h * f + f + h) + 4 * h  # qkv, dense, MLP, two LayerNorms
        return embeddings + n * layer + 2 * h
    raise UserError(f"model family '{family}' unknown (have: llama, neox)")


def _head_dim(hidden: int) -> int:
    return 16 if hidden < 128 else 32 if hidden < 512 else 64 if hidden < 2048 else 128


def _ffn(hidden: int, family: str) -> int:
    if family == "neox":
        return 4 * hidden
    multiple = 4 if hidden < 256 else 16 if hidden < 2048 else 256  # SwiGLU keeps ~8/3 h, rounded up
    return -(-(-(-8 * hidden // 3)) // multiple) * multiple


def _aspect(params: float) -> float:
    """Target hidden/layers: ~64 at GPT-3 Small, ~128 from 7B up (Llama), ~30 for 1M-parameter CPU models."""
    return min(128.0, max(16.0, 128 * (params / 7e9) ** (1 / 6)))


def _hidden_sizes() -> list[int]:
    # Widths that split into whole heads of _head_dim, an even head count from 512 and a multiple of 8 heads
    # (for 8 key/value groups) from 2048: the shapes tensor parallelism and fast kernels expect.
    return [*range(16, 128, 16), *range(128, 512, 32), *range(512, 2048, 128), *range(2048, 65536 + 1, 1024)]


def shape_for(params: float, vocab_size: int, family: str = "llama", tie_word_embeddings: bool = True) -> Shape:
    """A shape whose exact count is within ~5% of `params` (when any is), closest to the usual aspect ratio."""
    target_aspect = _aspect(params)
    best, best_key = None, None
    for hidden in _hidden_sizes():
        head_dim = _head_dim(hidden)
        if hidden % head_dim:
            continue
        heads = hidden // head_dim
        kv_heads = 8 if family == "llama" and hidden >= 2048 and heads % 8 == 0 else heads  # Llama-3-style GQA
        ffn = _ffn(hidden, family)
        for layers in range(1, 257):
            shape = Shape(layers=layers, hidden=hidden, heads=heads, ffn=ffn, kv_heads=kv_heads)
            count = parameters(shape, vocab_size, family, tie_word_embeddings)
            size_error = abs(math.log(count / params))
            key = (size_error > 0.05, size_error if size_error > 0.05 else 0.0,
                   abs(math.log(hidden / layers / target_aspect)), size_error)
            if best_key is None or key < best_key:
                best, best_key = shape, key
            if count > params * 1.1:
                break
    if best is None:
        raise UserError(f"no shape found for {params:.3g} parameters")
    return best


def nearest_preset(shape: Shape) -> str:
    """The preset of the same depth and width if there is one, else the closest in hidden size."""
    return min(PRESETS, key=lambda k: (abs(math.log(PRESETS[k].hidden / shape.hidden)),
                                       abs(PRESETS[k].layers - shape.layers)))


@dataclass
class Plan:
    flops: float
    params: float  # the compute-optimal (or given) size
    tokens: float
    loss: float
    basis: str  # what the budget was given as
    parametric_params: float  # the parametric fit's own optimum for the same FLOPs, for contrast
    parametric_tokens: float


def plan(*, compute_flops: float | None = None, params: float | None = None, tokens: float | None = None) -> Plan:
    """Resolve a budget into (FLOPs, parameters, tokens, expected loss). Params + tokens together: as given."""
    if compute_flops is not None and (params is not None or tokens is not None):
        raise UserError("give a compute budget or a size (params and/or tokens), not both")
    if compute_flops is not None:
        n, d = optimal_for_flops(compute_flops)
        basis = "compute"
    elif params is not None and tokens is not None:
        n, d, basis = params, tokens, "params and tokens as given"
    elif params is not None:
        _, d = optimal_for_params(params)
        n, basis = params, "params"
    elif tokens is not None:
        _, n = optimal_for_tokens(tokens)
        d, basis = tokens, "tokens"
    else:
        raise UserError("give a budget: --compute_flops, --params, --tokens, or --days with --gpus/--gpu_type/--mfu")
    for name, value in (("compute_flops", compute_flops), ("params", params), ("tokens", tokens)):
        if value is not None and value <= 0:
            raise UserError(f"{name} must be positive, got {value}")
    c = 6 * n * d
    pn, pd = parametric_optimum(c)
    return Plan(flops=c, params=n, tokens=d, loss=loss(n, d), basis=basis, parametric_params=pn, parametric_tokens=pd)
