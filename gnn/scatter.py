"""Segment reductions over an index on PyTorch's native ops (the aggregation of message passing).

Each function reduces ``src [E, *F]`` into ``dim_size`` rows given ``index [E]`` (row of each element).
Empty rows are 0. Choices, measured in benchmarks/scatter.py and recorded in docs/benchmarks.md:
sum uses ``index_add_`` (its backward is a gather, several times faster than ``scatter_reduce``'s),
mean divides that sum by counts, max/min use ``scatter_reduce(include_self=False)`` forward with a
backward of our own (a gather and an ``index_add_``), much faster than the generic one.
"""
from __future__ import annotations

from typing import Literal

import torch

Reduce = Literal["sum", "mean", "max", "min"]


def _zeros_like_rows(src: torch.Tensor, dim_size: int) -> torch.Tensor:
    return src.new_zeros((dim_size,) + tuple(src.shape[1:]))


def _expand_index(index: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    return index.view((-1,) + (1,) * (src.dim() - 1)).expand_as(src)


def scatter_sum(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Sum of ``src`` rows sharing an ``index``: ``out[i] = sum_{e: index[e]=i} src[e]``."""
    return _zeros_like_rows(src, dim_size).index_add_(0, index, src)


def scatter_count(index: torch.Tensor, dim_size: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Number of elements per row ``[dim_size]``."""
    ones = torch.ones(index.shape[0], dtype=dtype, device=index.device)
    return torch.zeros(dim_size, dtype=dtype, device=index.device).index_add_(0, index, ones)


def scatter_mean(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Mean of ``src`` rows sharing an ``index`` (0 for empty rows)."""
    count = scatter_count(index, dim_size, src.dtype).clamp_(min=1)
    return scatter_sum(src, index, dim_size) / count.view((-1,) + (1,) * (src.dim() - 1))


class _ScatterExtreme(torch.autograd.Function):
    """max/min forward by ``scatter_reduce``; backward by a gather and an ``index_add_``.

    The gradient goes to the elements equal to their row's extreme, split evenly between ties (as
    torch's own ``scatter_reduce`` backward does), but without its much slower generic backward.
    """

    @staticmethod
    def forward(ctx, src: torch.Tensor, index: torch.Tensor, dim_size: int, how: str) -> torch.Tensor:
        out = _zeros_like_rows(src, dim_size).scatter_reduce(0, _expand_index(index, src), src, reduce=how,
                                                             include_self=False)
        ctx.save_for_backward(src, index, out)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        src, index, out = ctx.saved_tensors
        hit = (src == out[index]).to(src.dtype)
        ties = _zeros_like_rows(hit, out.shape[0]).index_add_(0, index, hit)
        return hit * (grad_out / ties.clamp_(min=1))[index], None, None, None


def _scatter_extreme(src: torch.Tensor, index: torch.Tensor, dim_size: int, how: str) -> torch.Tensor:
    return _ScatterExtreme.apply(src, index, dim_size, how)


def scatter_max(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Element-wise maximum per row (0 for empty rows); gradient flows to the arg-max elements."""
    return _scatter_extreme(src, index, dim_size, "amax")


def scatter_min(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Element-wise minimum per row (0 for empty rows)."""
    return _scatter_extreme(src, index, dim_size, "amin")


def scatter_softmax(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Softmax of ``src`` over the elements that share an ``index`` (e.g. attention over incoming edges).

    Shapes: ``src [E, *F]`` -> ``[E, *F]``; each row group sums to 1 along dim 0.
    """
    row_max = scatter_max(src.detach(), index, dim_size)
    exp = (src - row_max[index]).exp()
    return exp / scatter_sum(exp, index, dim_size)[index]


_REDUCERS = {"sum": scatter_sum, "mean": scatter_mean, "max": scatter_max, "min": scatter_min}


def scatter(src: torch.Tensor, index: torch.Tensor, dim_size: int, reduce: Reduce = "sum") -> torch.Tensor:
    """Reduce ``src [E, *F]`` into ``[dim_size, *F]`` by ``reduce`` in {sum, mean, max, min}."""
    try:
        fn = _REDUCERS[reduce]
    except KeyError:
        raise ValueError(f"reduce must be one of {sorted(_REDUCERS)}, got {reduce!r}") from None
    return fn(src, index, dim_size)
