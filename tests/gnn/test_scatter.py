import pytest
import torch

from gnn.scatter import scatter, scatter_softmax
from tests.conftest import requires_cuda


def _loop_reference(src, index, n, how):
    out = torch.zeros((n,) + src.shape[1:], dtype=src.dtype)
    for i in range(n):
        rows = src[index == i]
        if len(rows):
            out[i] = {"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.amax(0), "min": rows.amin(0)}[how]
    return out


@pytest.mark.parametrize("how", ["sum", "mean", "max", "min"])
def test_scatter_matches_loop_reference_with_empty_rows(how):
    g = torch.Generator().manual_seed(0)
    src = torch.randn(200, 3, 4, generator=g, dtype=torch.float64)
    index = torch.randint(0, 30, (200,), generator=g)
    index[index == 7] = 8  # row 7 stays empty
    out = scatter(src, index, 31, how)
    assert torch.allclose(out, _loop_reference(src, index, 31, how))
    assert torch.all(out[7] == 0) and torch.all(out[30] == 0)


@pytest.mark.parametrize("how", ["sum", "mean", "max", "min"])
def test_scatter_gradients(how):
    g = torch.Generator().manual_seed(1)
    src = torch.randn(40, 3, generator=g, dtype=torch.float64, requires_grad=True)
    index = torch.randint(0, 6, (40,), generator=g)
    assert torch.autograd.gradcheck(lambda s: scatter(s, index, 7, how), (src,))


def test_softmax_normalises_each_group_and_is_shift_invariant():
    g = torch.Generator().manual_seed(2)
    src = torch.randn(50, 2, generator=g, dtype=torch.float64) * 30
    index = torch.randint(0, 5, (50,), generator=g)
    p = scatter_softmax(src, index, 5)
    assert torch.allclose(scatter(p, index, 5, "sum")[torch.bincount(index, minlength=5) > 0],
                          torch.ones(1, dtype=torch.float64))
    assert torch.allclose(scatter_softmax(src + 1000, index, 5), p)


def test_unknown_reduce_is_rejected():
    with pytest.raises(ValueError, match="reduce must be one of"):
        scatter(torch.ones(2, 1), torch.zeros(2, dtype=torch.long), 1, "median")


@pytest.mark.parametrize("how,torch_how", [("max", "amax"), ("min", "amin")])
def test_extreme_gradient_matches_torch_including_ties(how, torch_how):
    src = torch.tensor([[1.0, 2.0], [3.0, 2.0], [3.0, -1.0], [0.5, 0.5]], dtype=torch.float64, requires_grad=True)
    index = torch.tensor([0, 0, 0, 2])
    weights = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64)
    (scatter(src, index, 3, how) * weights).sum().backward()
    ours = src.grad.clone()
    src.grad = None
    ref = torch.zeros(3, 2, dtype=torch.float64).scatter_reduce(0, index[:, None].expand(-1, 2), src, torch_how,
                                                                include_self=False)
    (ref * weights).sum().backward()
    assert torch.allclose(ours, src.grad)


@requires_cuda
@pytest.mark.parametrize("how", ["sum", "mean", "max", "min"])
def test_cuda_matches_cpu_forward_and_backward(how):
    g = torch.Generator().manual_seed(4)
    src = torch.randn(5000, 8, generator=g, dtype=torch.float64)
    index = torch.randint(0, 300, (5000,), generator=g)
    weights = torch.randn(301, 8, generator=g, dtype=torch.float64)
    results = []
    for device in ("cpu", "cuda"):
        s = src.to(device).detach().requires_grad_(True)
        out = scatter(s, index.to(device), 301, how)
        (out * weights.to(device)).sum().backward()
        results.append((out.cpu(), s.grad.cpu()))
    assert torch.allclose(results[0][0], results[1][0]) and torch.allclose(results[0][1], results[1][1])
