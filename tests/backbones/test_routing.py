"""Routed feed-forward layers: the dense limit, capacity, Sinkhorn balance, the auxiliary loss, order."""
import pytest
import torch

from backbones.routing import (ROUTERS, RoutedFeedForward, RouterConfig, load_balancing_loss, routing_loss,
                               routing_metrics, sinkhorn)
from backbones.transformer import FeedForward, SetTransformer, TransformerConfig


def padded_tokens(seed=0, b=3, n=9, pad=2, dim=8):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n + pad, dim, generator=g, dtype=torch.float64)
    mask = torch.ones(b, n + pad, dtype=torch.bool)
    mask[:, n:] = False
    ids = torch.arange(n + pad).expand(b, -1)
    return x, mask, ids


@pytest.mark.parametrize("router", ROUTERS)
def test_one_expert_is_the_dense_feed_forward(router):
    torch.manual_seed(0)
    dense = FeedForward(8, 16).double()
    routed = RoutedFeedForward(8, 16, RouterConfig(experts=1, router=router)).double()
    with torch.no_grad():
        routed.norm.load_state_dict(dense.net[0].state_dict())
        routed.w1[0].copy_(dense.net[1].weight.T)
        routed.b1[0].copy_(dense.net[1].bias)
        routed.w2[0].copy_(dense.net[4].weight.T)
        routed.b2[0].copy_(dense.net[4].bias)
    x, mask, ids = padded_tokens()
    out = routed(x, mask, ids)
    assert torch.allclose(out[mask], dense(x)[mask], atol=1e-12)
    assert torch.equal(out[~mask], x[~mask])  # padding is not routed
    assert routing_metrics(routed)["moe_dropped"] == 0.0


def test_sinkhorn_plan_is_doubly_stochastic():
    g = torch.Generator().manual_seed(1)
    logits = 3 * torch.randn(64, 8, generator=g)
    plan = sinkhorn(logits, iterations=50)
    assert torch.allclose(plan.sum(1), torch.ones(64), atol=1e-5)
    assert torch.allclose(plan.sum(0), torch.full((8,), 64 / 8), atol=1e-3)
    # the raw softmax is far from balanced: the balancing is Sinkhorn's doing
    assert (logits.softmax(1).sum(0) - 8).abs().max() > 1


def test_sinkhorn_routing_balances_a_skewed_router_while_training_only():
    torch.manual_seed(2)
    layer = RoutedFeedForward(8, 16, RouterConfig(experts=4, router="sinkhorn", capacity_factor=0,
                                                  sinkhorn_iterations=20)).double()
    with torch.no_grad():
        layer.router.weight.zero_()
        layer.router.weight[:, 0] = torch.tensor([3.0, 2.0, 1.0, 0.0])  # experts 0 and 3 take every token
    x, mask, _ = padded_tokens(n=40, pad=0)
    layer.train()(x, mask)
    assert routing_metrics(layer)["moe_max_over_mean"] < 1.3
    layer.eval()(x, mask)
    assert routing_metrics(layer)["moe_max_over_mean"] > 1.6  # plain top-1 at inference


def test_capacity_overflow_drops_exactly_the_overflowing_tokens():
    torch.manual_seed(3)
    cfg = RouterConfig(experts=4, router="switch", capacity_factor=1.0)  # capacity ceil(10 / 4) = 3
    layer = RoutedFeedForward(8, 16, cfg).double().eval()
    x, mask, _ = padded_tokens(n=10, pad=0, b=1)
    with torch.no_grad():
        layer.router.weight.mul_(0.1)
        layer.router.weight[0, 0] = 3.0  # tokens with x_0 > 0 crowd into expert 0
    out = layer(x, mask)[0]
    # brute force: each token's top-1 expert and gate; per expert, the 3 largest gates are served
    tokens = layer.norm(x[0]).detach()
    probs = (tokens @ layer.router.weight.T).softmax(1)
    gate, expert = probs.max(1)
    kept = torch.zeros(10, dtype=torch.bool)
    for e in range(4):
        mine = torch.where(expert == e)[0]
        kept[mine[gate[mine].argsort(descending=True)[:3]]] = True
    assert (~kept).sum() >= 1  # the case under test: tokens overflow
    assert torch.equal((out == x[0]).all(1), ~kept)  # dropped tokens pass through unchanged
    for i in torch.where(kept)[0]:
        e = int(expert[i])
        mlp = torch.nn.functional.gelu(tokens[i] @ layer.w1[e] + layer.b1[e]) @ layer.w2[e] + layer.b2[e]
        assert torch.allclose(out[i], x[0, i] + gate[i] * mlp, atol=1e-12)
    assert routing_metrics(layer)["moe_dropped"] == pytest.approx(float((~kept).sum()) / 10)


def test_load_balancing_loss_equals_its_formula_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.4, 0.6]])
    first = torch.tensor([0, 0, 0, 1])
    # f = (3/4, 1/4), P = (0.7, 0.3): 2 * (0.75 * 0.7 + 0.25 * 0.3)
    assert float(load_balancing_loss(probs, first)) == pytest.approx(1.2)
    uniform = torch.full((4, 2), 0.5)
    assert float(load_balancing_loss(uniform, torch.tensor([0, 1, 0, 1]))) == pytest.approx(1.0)


def test_top2_gates_sum_to_one_and_aux_losses_reach_the_router():
    torch.manual_seed(4)
    layer = RoutedFeedForward(8, 16, RouterConfig(experts=4, router="top2", capacity_factor=0)).double()
    x, mask, _ = padded_tokens()
    expert, gate = layer.route(layer.norm(x[mask]), None)
    assert expert.shape == (2, int(mask.sum())) and (expert[0] != expert[1]).all()
    assert torch.allclose(gate.sum(0), torch.ones(gate.shape[1], dtype=gate.dtype))
    (layer(x, mask).square().sum() + routing_loss(layer)).backward()
    assert layer.router.weight.grad.abs().sum() > 0
    assert all(float(p.grad.abs().sum()) > 0 for p in (layer.w1, layer.w2))


def test_hash_routing_is_fixed_and_balanced_and_needs_ids():
    layer = RoutedFeedForward(8, 16, RouterConfig(experts=4, router="hash"))
    ids = torch.arange(4000)
    expert, gate = layer.route(torch.zeros(4000, 8), ids)
    assert torch.equal(expert, RoutedFeedForward(8, 16, RouterConfig(experts=4, router="hash")).route(
        torch.zeros(4000, 8), ids)[0])
    counts = torch.bincount(expert[0], minlength=4)
    assert counts.min() > 900 and (gate == 1).all() and float(routing_loss(layer)) == 0.0
    with pytest.raises(ValueError, match="route_ids"):
        layer(torch.zeros(1, 3, 8))


@pytest.mark.parametrize("router", ROUTERS)
def test_routed_set_transformer_ignores_order_and_padding(router):
    torch.manual_seed(5)
    cfg = TransformerConfig(dim=8, heads=2, mlp_dim=16, depth=2, class_depth=1, dropout=0.0,
                            moe=RouterConfig(experts=3, router=router, every=1))
    model = SetTransformer(cfg).double().eval()
    x, mask, _ = padded_tokens(n=7, pad=3)
    ids = (x[..., 0] * 1000).long().abs()  # a per-token feature, as a particle's pT rank
    out = model(x, mask, route_ids=ids)
    perm = torch.cat([torch.randperm(7), torch.arange(7, 10)])
    assert torch.allclose(model(x[:, perm], mask, route_ids=ids[:, perm]), out, atol=1e-10)
    assert sum(isinstance(b.ff, RoutedFeedForward) for b in model.blocks) == 2


def test_unknown_router_is_refused():
    with pytest.raises(ValueError, match="router must be one of"):
        RouterConfig(router="random")
