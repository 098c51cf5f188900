"""Looking inside message-passing networks: recorded messages and ablated processor steps.

Both are context managers built on forward hooks, so a network outside them runs exactly as before.
``record_messages(model)`` collects the output edges (the messages) of every :class:`gnn.blocks.EdgeBlock`
per call; ``ablate_steps(net, steps)`` makes the chosen processor blocks of an
:class:`gnn.encode_process_decode.EncodeProcessDecode` return zero updates, so their residual adds nothing
and the step is skipped (zero ablation).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from gnn.blocks import EdgeBlock
from gnn.encode_process_decode import EncodeProcessDecode


@contextlib.contextmanager
def record_messages(model: nn.Module) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Inside the block, every EdgeBlock of ``model`` records its messages.

    Yields:
        ``{EdgeBlock name: [messages [E, F] of each call, in call order]}`` (detached).
    """
    messages: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, EdgeBlock):
            def record(module: nn.Module, args: tuple, out, name: str = name) -> None:
                messages.setdefault(name, []).append(out.edges.detach())
            handles.append(module.register_forward_hook(record))
    try:
        yield messages
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def ablate_steps(net: EncodeProcessDecode, steps: Sequence[int]) -> Iterator[None]:
    """Inside the block the processor steps ``steps`` (0-based) of ``net`` contribute nothing.

    Args:
        net: the encode-process-decode network (a GNS's, MeshGraphNet's or the tracking model's ``.net``).
        steps: indices into ``net.processor``.
    """
    bad = [s for s in steps if not 0 <= s < len(net.processor)]
    if bad:
        raise ValueError(f"the processor has {len(net.processor)} steps; cannot ablate {bad}")

    def zero(module: nn.Module, args: tuple, out: list) -> list:
        return [g.replace(nodes=torch.zeros_like(g.nodes), edges=torch.zeros_like(g.edges)) for g in out]

    handles = [net.processor[s].register_forward_hook(zero) for s in steps]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
