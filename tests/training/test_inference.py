import pytest
import torch

from gnn.encode_process_decode import EncodeProcessDecode, EncodeProcessDecodeConfig
from gnn.graph import GraphBatch
from training import inference
from training.inference import compile_network


def random_graph(n: int, e: int, seed: int) -> GraphBatch:
    g = torch.Generator().manual_seed(seed)
    return GraphBatch(nodes=torch.randn(n, 5, generator=g), edges=torch.randn(e, 3, generator=g),
                      senders=torch.randint(0, n, (e,), generator=g), receivers=torch.randint(0, n, (e,), generator=g),
                      n_node=torch.tensor([n]), n_edge=torch.tensor([e]))


def small_network() -> EncodeProcessDecode:
    torch.manual_seed(0)
    return EncodeProcessDecode(EncodeProcessDecodeConfig(node_in=5, edge_in=3, node_out=2, latent=16,
                                                         n_steps=2)).eval()


def test_auto_and_off_stay_eager_on_the_cpu_and_bad_modes_are_refused():
    net = small_network()
    assert not compile_network(net, "auto", "cpu") and not compile_network(net, "off", "cpu")
    with pytest.raises(ValueError, match="compile must be one of auto, on, off, got 'yes'"):
        compile_network(net, "yes", "cpu")


def test_without_a_compiler_on_warns_and_runs_eager(monkeypatch):
    monkeypatch.setattr(inference.shutil, "which", lambda name: None)
    with pytest.warns(UserWarning, match="needs a C.. compiler on cpu; running eager"):
        assert not compile_network(small_network(), "on", "cpu")


@pytest.mark.slow
@pytest.mark.skipif(not inference.compiler_available("cpu"), reason="needs a C++ compiler")
def test_compiled_network_matches_eager_and_does_not_recompile_when_the_graph_grows():
    """A rollout's graphs change size every step: after the first call, new sizes must reuse the kernels."""
    eager, compiled = small_network(), small_network()
    assert compile_network(compiled, "on", "cpu")
    torch._dynamo.utils.counters.clear()
    graphs = [random_graph(n, 6 * n, seed) for seed, n in enumerate((40, 57, 91))]
    with torch.no_grad():
        torch.testing.assert_close(compiled(graphs[0]).nodes, eager(graphs[0]).nodes, rtol=1e-5, atol=1e-5)
        with torch._dynamo.config.patch(error_on_recompile=True):
            for graph in graphs[1:]:
                torch.testing.assert_close(compiled(graph).nodes, eager(graph).nodes, rtol=1e-5, atol=1e-5)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # really compiled
    assert set(compiled.state_dict()) == set(eager.state_dict())


def test_inference_device_resolves_auto_and_refuses_what_is_not_there(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert inference.inference_device("auto") == torch.device("cpu")
    assert inference.inference_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        inference.inference_device("cuda:0")
    with pytest.raises(ValueError, match="device must be"):
        inference.inference_device("gpu-please")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert inference.inference_device("auto") == torch.device("cuda")
