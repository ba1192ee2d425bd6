"""Pick the torch device and precision a model runs with, from settings.

Shared by every torch-based stage (CLIP, the text encoder, torch OCR) so that ``auto``
means the same thing everywhere: CUDA when torch sees a GPU, else Apple's MPS, else CPU;
bf16 autocast on GPUs that support it, fp16 on older ones, fp32 on the CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rag.errors import ConfigError


def resolve_device(name: str) -> str:
    """A concrete torch device string for a setting (``auto``, ``cpu``, ``cuda:1``, ...)."""
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"unknown torch device {name!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but torch sees no CUDA GPU; use 'auto'")
    return name


def resolve_dtype(precision: str, device: str) -> Any:
    """The autocast dtype for ``precision`` on ``device``, or None for plain fp32.

    ``auto`` only lowers precision on CUDA: CPU bf16 autocast is slower than fp32 on most
    CPUs without AMX, and MPS autocast support varies between torch versions.
    """
    import torch

    kind = device.split(":")[0]
    if precision == "fp32":
        return None
    if precision == "auto":
        if kind != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if kind == "cpu":
            raise ConfigError("precision 'fp16' is not supported on the CPU; use 'bf16' or 'fp32'")
        return torch.float16
    raise ConfigError(f"unknown precision {precision!r}; choose auto, fp32, bf16 or fp16")


@contextlib.contextmanager
def inference(device: str, dtype: Any) -> Iterator[None]:
    """``torch.inference_mode`` plus autocast to ``dtype`` when one is set."""
    import torch

    with torch.inference_mode():
        if dtype is None:
            yield
        else:
            with torch.autocast(device_type=device.split(":")[0], dtype=dtype):
                yield
