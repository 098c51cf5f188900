"""Jet-tagger throughput: training and inference jets/s and peak memory of every tagger, ParticleNet against a
weaver-style dense implementation, a profile of its kNN and EdgeConv paths, and ParT against the Perceiver
tagger at 128 and 512 particles.

Jets come from the committed sample (``hep/jets/sample``) or ``--data``; batches are trimmed to their longest
jet as in training. Every measurement runs in a fresh process, so peak memory (growth of the resident set
over the loaded data and model, from Linux's ``VmHWM``) belongs to that tagger alone.

The reference for ParticleNet is the formulation of weaver-core's ParticleNet (what CMS and most papers run):
padded ``[B, C, N]`` tensors, kNN by ``topk`` over the dense ``[B, N, N]`` distance matrix with padding
shifted far away, neighbour features gathered to ``[B, 2C, N, k]`` and 1x1 convolutions. Same layer sizes,
same inputs; ours runs on the flat list of real particles (``gnn.blocks.EdgeConv``: numba cell-list kNN in
(d_eta, d_phi), per-jet distance kNN in feature space, gather, MLP, scatter-mean). The reference for ParT is
the same model with its pair embedding run on every padded pair ``[B, 4, L, L]``; ours embeds the real pairs
``i < j`` only and scatters the bias.

    jets: <what> ours X, reference Y, ratio

Usage: python benchmarks/jets.py [--batch 128] [--steps 10] [--models pfn particlenet-lite ...]
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import torch
from timing import best_of  # benchmarks/timing.py
from torch import nn
from torch.nn import functional as F

from gnn.neighbours import knn_graph
from gnn.scatter import scatter
from hep.jets import SAMPLE_DIR
from hep.jets.inputs import JetBatch, load_jets, pair_features
from hep.jets.models import MODELS, N_FEATURES, MaskedBatchNorm, ParticleTransformer, _as_graph
from hep.jets.train import jet_files


def memory_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak since the last :func:`reset_peak`) of this process."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field)) / 1024


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:  # Linux: "5" resets the peak resident set size
        fh.write("5")


def batches(jets: JetBatch, size: int, count: int) -> list[JetBatch]:
    return [jets[i * size % (len(jets) - size + 1):][:size].trimmed() for i in range(count)]


def throughput(model: nn.Module, jets: JetBatch, batch: int, steps: int, train: bool) -> float:
    """Jets per second of training steps (Adam) or of inference, after one warm-up batch."""
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    data = batches(jets, batch, steps + 1)
    model.train(train)

    def step(b: JetBatch) -> None:
        if train:
            loss = F.cross_entropy(model(b), b.label)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        else:
            with torch.inference_mode():
                model(b)

    step(data[0])
    start = time.perf_counter()
    for b in data[1:]:
        step(b)
    return batch * steps / (time.perf_counter() - start)


def measure(name: str, data: str | None, batch: int, steps: int, particles: int | None = None) -> dict:
    """Training and inference jets/s of one tagger and the peak memory of its training (in a fresh process)."""
    torch.manual_seed(0)
    jets = synthetic_jets(8 * batch, particles) if particles else load_jets(jet_files(data or SAMPLE_DIR))
    model = {**MODELS, **REFERENCES}[name]()
    reset_peak()
    base = memory_mb("VmRSS")
    train = throughput(model, jets, batch, steps, train=True)
    peak = memory_mb("VmHWM") - base
    return {"train": train, "infer": throughput(model, jets, 4 * batch, max(steps // 2, 2), train=False),
            "peak_mb": peak}


def synthetic_jets(n: int, particles: int) -> JetBatch:
    """``n`` jets of exactly ``particles`` massless constituents spread over a cone of radius ~0.4."""
    g = torch.Generator().manual_seed(0)
    d_eta, d_phi = (0.2 * torch.randn(n, particles, generator=g) for _ in range(2))
    pt = 600 * torch.distributions.Dirichlet(torch.ones(particles)).sample((n,))
    px, py, pz = pt * torch.cos(d_phi), pt * torch.sin(d_phi), pt * torch.sinh(d_eta)
    e = torch.sqrt(px ** 2 + py ** 2 + pz ** 2)
    dr = torch.hypot(d_eta, d_phi)
    features = torch.stack([pt.log(), e.log(), (pt / 600).log(), (e / e.sum(1, keepdim=True)).log(), d_eta, d_phi,
                            dr], 1)
    return JetBatch(torch.stack([d_eta, d_phi], 1), features, torch.stack([px, py, pz, e], 1),
                    torch.ones(n, particles, dtype=torch.bool), torch.randint(0, 2, (n,), generator=g))


class DenseEdgeConv(nn.Module):
    """weaver-core's EdgeConv block: topk kNN on padded tensors, gathered ``[B, 2C, N, k]``, 1x1 convs each with
    BatchNorm and ReLU, mean, a 1x1-conv + BatchNorm shortcut."""

    def __init__(self, k: int, in_channels: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.k = k
        widths = (2 * in_channels, *channels)
        self.convs = nn.Sequential(*(layer for a, b in zip(widths[:-1], widths[1:])
                                     for layer in (nn.Conv2d(a, b, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU())))
        self.shortcut = nn.Sequential(nn.Conv1d(in_channels, channels[-1], 1, bias=False),
                                      nn.BatchNorm1d(channels[-1]))

    def forward(self, points: torch.Tensor, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        shifted = points + (~mask[:, None, :]) * 1e9  # padding never becomes a neighbour
        idx = dense_knn(shifted, self.k)
        x = self.convs(edge_features(features, idx))
        return torch.relu(x.mean(-1) + self.shortcut(features)) * mask[:, None, :]


def dense_knn(points: torch.Tensor, k: int) -> torch.Tensor:
    """``[B, N, k]`` indices of each point's k nearest others (weaver: topk of minus squared distances)."""
    inner = -2 * torch.matmul(points.transpose(2, 1), points)
    square = (points ** 2).sum(1, keepdim=True)
    return (-square - inner - square.transpose(2, 1)).topk(k + 1, dim=-1)[1][:, :, 1:]


def edge_features(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``[B, 2C, N, k]``: (x_i, x_j - x_i) for the neighbours ``idx``."""
    b, c, n = x.shape
    k = idx.shape[-1]
    flat = (idx + torch.arange(b, device=x.device)[:, None, None] * n).reshape(-1)
    neighbours = x.transpose(2, 1).reshape(b * n, c)[flat].view(b, n, k, c).permute(0, 3, 1, 2)
    centre = x[..., None].expand(-1, -1, -1, k)
    return torch.cat([centre, neighbours - centre], dim=1)


class DenseParticleNet(nn.Module):
    def __init__(self, lite: bool = False) -> None:
        super().__init__()
        k, blocks, fc = (7, ((32,) * 3, (64,) * 3), 128) if lite else (16, ((64,) * 3, (128,) * 3, (256,) * 3), 256)
        self.norm = MaskedBatchNorm(N_FEATURES)
        widths = (N_FEATURES, *(c[-1] for c in blocks))
        self.blocks = nn.ModuleList(DenseEdgeConv(k, w, c) for w, c in zip(widths[:-1], blocks))
        concatenated = sum(widths[1:])
        fused = min(max(concatenated // 128 * 128, 128), 1024)
        self.fusion = nn.Sequential(nn.Conv1d(concatenated, fused, 1, bias=False), nn.BatchNorm1d(fused), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(fused, fc), nn.ReLU(), nn.Dropout(0.1), nn.Linear(fc, 2))

    def forward(self, jets: JetBatch) -> torch.Tensor:
        x, points, outputs = self.norm(jets.features, jets.mask), jets.points, []
        for block in self.blocks:
            x = block(points, x, jets.mask)
            points = x
            outputs.append(x)
        x = self.fusion(torch.cat(outputs, 1)) * jets.mask[:, None, :]
        pooled = x.sum(-1) / jets.mask.sum(1, keepdim=True)
        return self.head(pooled)


class DensePairParticleTransformer(ParticleTransformer):
    """ParT with the pair embedding run on all ``L^2`` padded pairs (``[B, 4, L, L]``), as a dense
    implementation does, instead of on the real pairs ``i < j`` only."""

    def pair_bias(self, jets: JetBatch) -> torch.Tensor:
        pairs = pair_features(jets.vectors, jets.mask)
        normed = F.batch_norm(pairs, self.pair_norm.running_mean, self.pair_norm.running_var, self.pair_norm.weight,
                              self.pair_norm.bias, self.training)
        return self.pair_embed(normed.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()


REFERENCES = {"dense-particlenet": DenseParticleNet, "dense-particlenet-lite": lambda: DenseParticleNet(lite=True),
              "dense-pair-part": DensePairParticleTransformer,
              "dense-pair-part-full": lambda: DensePairParticleTransformer(small=False)}


def profile_knn_and_edgeconv(data: str | None, batch: int, repeats: int = 10) -> list[tuple[str, float, float]]:
    """Seconds per batch of each ParticleNet stage, ours against the dense formulation (k = 16, 64 channels)."""
    jets = batches(load_jets(jet_files(data or SAMPLE_DIR)), batch, 1)[0]
    graph, points = _as_graph(jets, jets.features.transpose(1, 2)[..., :N_FEATURES])
    feats = torch.randn(graph.num_nodes, 64)
    dense_feats = torch.zeros(len(jets), 64, jets.mask.shape[1])
    dense_feats.transpose(1, 2)[jets.mask] = feats
    shifted = jets.points + (~jets.mask[:, None, :]) * 1e9
    senders, receivers = knn_graph(points, 16, batch=graph.node_graph)
    idx = dense_knn(shifted, 16)
    mlp = nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 64))
    conv = nn.Sequential(nn.Conv2d(128, 64, 1), nn.ReLU(), nn.Conv2d(64, 64, 1))

    def ours_edgeconv() -> torch.Tensor:
        x_i, x_j = feats[receivers], feats[senders]
        out = mlp(torch.cat([x_i, x_j - x_i], -1))
        return scatter(out, receivers, len(feats), "mean")

    stages = [
        ("kNN (d_eta, d_phi), k=16", lambda: knn_graph(points, 16, batch=graph.node_graph),
         lambda: dense_knn(shifted, 16)),
        ("kNN 64-d features, k=16", lambda: knn_graph(feats, 16, batch=graph.node_graph),
         lambda: dense_knn(dense_feats + (~jets.mask[:, None, :]) * 1e9, 16)),
        ("EdgeConv messages + mean", ours_edgeconv, lambda: conv(edge_features(dense_feats, idx)).mean(-1)),
    ]
    timings = []
    with torch.inference_mode():
        for name, ours, reference in stages:
            timings.append((name, best_of(ours, repeats), best_of(reference, repeats)))
    return timings


def fresh(*args) -> dict:
    """``measure(*args)`` in a new process."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(measure, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="folder of jets_*.root (default: the committed sample)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--models", nargs="+", default=["pfn", "particlenet-lite", "particlenet", "part",
                                                          "part-full", "perceiver"], choices=list(MODELS))
    parser.add_argument("--particles", type=int, nargs="+", default=[128, 512],
                        help="jet sizes of the ParT vs Perceiver scaling test")
    args = parser.parse_args()

    print(f"{'tagger':18s} {'train jets/s':>12s} {'infer jets/s':>12s} {'train peak MB':>13s}")
    for name in args.models:
        m = fresh(name, args.data, args.batch, args.steps)
        print(f"{name:18s} {m['train']:12.0f} {m['infer']:12.0f} {m['peak_mb']:13.0f}", flush=True)

    for ours, reference in (("particlenet-lite", "dense-particlenet-lite"), ("particlenet", "dense-particlenet"),
                            ("part", "dense-pair-part"), ("part-full", "dense-pair-part-full")):
        a, b = fresh(ours, args.data, args.batch, args.steps), fresh(reference, args.data, args.batch, args.steps)
        for what, unit in (("train", "jets/s"), ("infer", "jets/s")):
            print(f"jets: {ours} {what} ours {a[what]:.0f} {unit}, {reference} {b[what]:.0f} {unit}, "
                  f"ratio {a[what] / b[what]:.2f}")
        print(f"jets: {ours} training peak memory ours {a['peak_mb']:.0f} MB, {reference} {b['peak_mb']:.0f} MB")

    for name, ours_s, ref_s in profile_knn_and_edgeconv(args.data, args.batch):
        print(f"jets: {name} ours {ours_s * 1e3:.2f} ms/batch, dense {ref_s * 1e3:.2f} ms/batch, "
              f"ratio {ref_s / ours_s:.2f}")

    for particles in args.particles:
        for name in ("part", "perceiver"):
            m = fresh(name, None, max(args.batch // 4, 8), args.steps, particles)
            print(f"jets: {name} at {particles} particles: train {m['train']:.0f} jets/s, infer {m['infer']:.0f} "
                  f"jets/s, training peak {m['peak_mb']:.0f} MB", flush=True)


if __name__ == "__main__":
    main()
