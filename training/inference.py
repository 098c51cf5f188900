"""How a trained network runs in rollouts and evaluation: its precision and whether it is compiled.

``compile``: ``on`` compiles the network in place with ``torch.compile(dynamic=True)`` (graph sizes change
every rollout step as neighbours come and go, so shapes are dynamic from the first call and a rollout never
recompiles); ``off`` runs eager; ``auto`` compiles on CUDA and runs eager on CPUs, where it was measured not to
pay: on the project's 2-core machine the GNS-size processor at N = 4,000 compiled in 64 s for a 10% faster
fp32 forward (``benchmarks/gns_step.py --compile on``). Without a compiler toolchain (a C++ compiler for
CPUs, Triton for CUDA) ``on`` warns and runs eager.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import warnings

import torch
from torch import nn

COMPILE_MODES = ("auto", "on", "off")


def compiler_available(device_type: str) -> bool:
    """Whether torch.compile's default backend can build kernels for ``device_type`` here."""
    if device_type == "cuda":
        return importlib.util.find_spec("triton") is not None
    return any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "c++", "clang++"))


def compile_network(module: nn.Module, mode: str, device: torch.device | str) -> bool:
    """Compile ``module`` in place for inference (see the module docstring); True if it was compiled.

    Args:
        module: the network (its parameters and state_dict keys are unchanged).
        mode: ``auto``, ``on`` or ``off``.
        device: where it runs.
    """
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {', '.join(COMPILE_MODES)}, got {mode!r}")
    kind = torch.device(device).type
    if mode == "off" or (mode == "auto" and kind != "cuda"):
        return False
    if not compiler_available(kind):
        if mode == "on":
            warnings.warn(f"torch.compile needs {'Triton' if kind == 'cuda' else 'a C++ compiler'} on {kind}; "
                          "running eager", stacklevel=2)
        return False
    module.compile(dynamic=True)
    return True



def inference_device(device: str = "auto") -> torch.device:
    """The device a command runs a network on: ``auto`` is the first CUDA device when there is one, else the CPU.

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {device!r} ({err})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available on this machine (use --device cpu)")
    return dev
