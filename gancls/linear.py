"""nn.Linear whose fp32 CPU matmuls (forward and both backward products) run on oneDNN.

PyTorch sends fp32 CPU matmuls to MKL's sgemm. On the AMD EPYC (AVX-512) CPUs we measured, that
runs at 35-50 % of oneDNN's speed for the seed's big layers ([B, 6272] x [6272, 1024] at B = 10-64;
`bench/throughput.py --profile` prints both), while oneDNN is what TensorFlow uses. oneDNN's fp32
matmul keeps fp32 inputs, outputs and accumulation, so only the summation order changes.
Anywhere else (GPU, other dtypes, autocast, a torch without oneDNN) the layer is plain nn.Linear.
"""

from __future__ import annotations

import functools
import platform

import torch
import torch.nn as nn
import torch.nn.functional as F


@functools.lru_cache(maxsize=None)
def onednn_available() -> bool:
    """True when this torch can run fp32 matmuls through oneDNN on this (x86-64) CPU.

    The operator is private: an older or differently built torch may lack it, raise on lookup
    (older torch raises RuntimeError, not AttributeError, for a missing op) or reject these
    arguments. So it is tried once, on a tiny plain and a transposed operand as the backward pass
    uses, and checked against torch's own matmul; anything unexpected means plain nn.Linear.
    """
    if platform.machine().lower() not in ("x86_64", "amd64") or not torch.backends.mkldnn.is_available():
        return False
    try:
        # On the CPU whatever the default device: a model built under `torch.device("meta")` (as
        # load_checkpoint does to check shapes) must not make the cached answer "no" for the process.
        with torch.no_grad():
            a = torch.arange(6, dtype=torch.float32, device="cpu").reshape(2, 3) / 7  # [M, K]
            w = torch.arange(12, dtype=torch.float32, device="cpu").reshape(4, 3) / 5  # [N, K]
            bias = torch.ones(4, device="cpu")
            ok = torch.allclose(_mm(a, w, bias), a @ w.t() + bias, atol=1e-5)
            ok = ok and torch.allclose(_mm(a.t().contiguous().t(), w.t().contiguous().t()), a @ w.t(), atol=1e-5)
        return bool(ok)
    except Exception:  # noqa: BLE001 -- any failure of a private op means "not here"
        return False


def _mm(a: torch.Tensor, b_t: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    # a [M, K], b_t [N, K] -> a @ b_t.T + bias [M, N], on oneDNN (strided operands are fine)
    return torch.ops.mkldnn._linear_pointwise(a, b_t, bias, "none", [], "")


class _OneDNNLinear(torch.autograd.Function):
    """y = x W^T + b with x [B, in], W [out, in]; gradients only for the inputs that need them."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _mm(x, weight, bias)  # [B, out]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # grad [B, out]
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        grad_x = _mm(grad, weight.t()) if need_x else None  # [B, in]
        grad_w = _mm(grad.t(), x.t()) if need_w else None  # [out, in]
        grad_b = grad.sum(0) if ctx.has_bias and need_b else None  # [out]
        return grad_x, grad_w, grad_b


class Linear(nn.Linear):
    """nn.Linear (same parameters, same state_dict) with the oneDNN path for 2-D fp32 CPU inputs.

    `onednn` switches the path per layer (benchmarks compare both); it defaults to whether this
    machine has oneDNN. Under autocast the layer defers to F.linear, so bf16 autocast still applies.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.onednn = onednn_available()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.onednn and x.dim() == 2 and x.device.type == "cpu" and x.dtype == torch.float32
                and self.weight.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")):
            return _OneDNNLinear.apply(x, self.weight, self.bias)
        return F.linear(x, self.weight, self.bias)
