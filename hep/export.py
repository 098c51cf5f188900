"""``physml hep export-onnx``: a trained jet tagger or tracking edge classifier as an ONNX graph, for
onnxruntime and the experiment software that embeds it (as weaver users deploy their taggers).

Inputs and outputs of the exported graphs (float32 unless said; every size dynamic):

- taggers (ParticleNet, ParT, PFN, Perceiver): ``points [B, 2, L]`` (d_eta, d_phi), ``features [B, 7, L]``
  (``particles.yaml``'s order), ``vectors [B, 4, L]`` (px, py, pz, E in GeV), ``mask [B, L]`` bool (True for
  real particles) -> ``probs [B, 2]`` (QCD, top), the softmax of the torch tagger;
- tracking: ``nodes [N, 3]`` (r, phi, z as the edge classifier's inputs), ``edges [E, 4]``, ``senders [E]``,
  ``receivers [E]`` int64 -> ``scores [E]``, the sigmoid of the edge logits.

The graphs are traced by ``torch.export`` (ParticleNet's kNN and every other data-dependent size stay
symbolic) and written by ``torch.onnx`` with opset 18; ``hypot`` gets an explicit translation. A traced tagger
needs at least one particle pair per batch, and the tracking graph at least one edge.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from datasets.atomic import atomic_path
from gnn.graph import GraphBatch
from hep.jets import SAMPLE_DIR
from hep.jets.inputs import JetBatch, load_jets
from hep.jets.models import MEDIA_MODELS
from hep.jets.tag import SHIPPED
from hep.jets.train import RECIPE as JETS
from hep.jets.train import JetRun
from hep.tracking.model import RECIPE as TRACKING
from training.pretrained import resolve
from training.recipe import load

OPSET = 18
MAX_BATCH = 1 << 20  # bounds the symbolic sizes, whose products must stay within int64


class TaggerGraph(nn.Module):
    """A tagger on plain tensors: ``(points, features, vectors, mask) -> probs [B, 2]``."""

    def __init__(self, tagger: nn.Module) -> None:
        super().__init__()
        self.tagger = tagger

    def forward(self, points: torch.Tensor, features: torch.Tensor, vectors: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        jets = JetBatch(points, features, vectors, mask, mask[:, 0].long())  # the label is never read
        return torch.softmax(self.tagger(jets), dim=1)


class EdgeClassifierGraph(nn.Module):
    """The tracking edge classifier on plain tensors: ``(nodes, edges, senders, receivers) -> scores [E]``."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, nodes: torch.Tensor, edges: torch.Tensor, senders: torch.Tensor,
                receivers: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.classifier(GraphBatch.single(nodes, senders, receivers, edges)))


def example_jets(count: int = 64) -> JetBatch:
    """The first ``count`` jets of the committed sample, trimmed: the tracing example and the tests' inputs."""
    return load_jets(sorted(SAMPLE_DIR.glob("jets_*.root"))[:1], limit=count).trimmed()


def example_graph(nodes: int = 40, edges: int = 120, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """A random graph with the edge classifier's input widths: ``(nodes, edges, senders, receivers)``."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(nodes, 3, generator=gen), torch.randn(edges, 4, generator=gen),
            torch.randint(0, nodes, (edges,), generator=gen), torch.randint(0, nodes, (edges,), generator=gen))


def graph_module(run_dir: str | Path) -> tuple[nn.Module, tuple[torch.Tensor, ...], dict, list[str], list[str]]:
    """The exportable module of a tagger or tracking run, an example input, its dynamic shapes and the input
    and output names."""
    network, run = load(run_dir, [JETS, TRACKING])
    if isinstance(run, JetRun):
        if run.model == "part-moe":
            raise ValueError(f"{run_dir}: routed taggers (part-moe) are not exported: expert capacity is a "
                             "data-dependent size ONNX cannot hold")
        if run.model in MEDIA_MODELS:
            raise ValueError(f"{run_dir}: taggers that read tracks and vertices ({run.model}) are not exported "
                             "yet: the exported graph takes the particle inputs only")
        jets = example_jets()
        batch, length = torch.export.Dim("jets", max=MAX_BATCH), torch.export.Dim("particles", max=4096)
        shapes = {"points": {0: batch, 2: length}, "features": {0: batch, 2: length},
                  "vectors": {0: batch, 2: length}, "mask": {0: batch, 1: length}}
        return (TaggerGraph(network).eval(), (jets.points, jets.features, jets.vectors, jets.mask), shapes,
                ["points", "features", "vectors", "mask"], ["probs"])
    n, e = torch.export.Dim("nodes", max=MAX_BATCH), torch.export.Dim("edges", max=MAX_BATCH)
    shapes = {"nodes": {0: n}, "edges": {0: e}, "senders": {0: e}, "receivers": {0: e}}
    return (EdgeClassifierGraph(network).eval(), example_graph(), shapes, ["nodes", "edges", "senders", "receivers"],
            ["scores"])


def _hypot(a, b):
    from onnxscript import opset18 as op

    return op.Sqrt(op.Add(op.Mul(a, a), op.Mul(b, b)))


def export_onnx(out: str = "model.onnx", model: str | None = None, pretrained: str | None = None) -> Path:
    """Export a trained jet tagger or tracking edge classifier to ONNX (opset 18, dynamic sizes); needs the
    ``onnx`` extra (``pip install 'physml[onnx]'``).

    Args:
        out: the ``.onnx`` file (written atomically).
        model: a ``train jets`` or ``train tracking`` run folder.
        pretrained: a shipped tagger instead (``physml models list``).
    """
    try:
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError:
        raise ImportError("ONNX export needs onnx and onnxscript: pip install 'physml[onnx]'") from None
    from torch.nn.attention import SDPBackend, sdpa_kernel

    module, example, shapes, inputs, outputs = graph_module(resolve(model, pretrained, SHIPPED))
    # the math attention kernel: the traced graph then has the layout ONNX's attention ops produce
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        program = torch.onnx.export(module, example, dynamic_shapes=shapes, input_names=inputs,
                                    output_names=outputs, opset_version=OPSET, verbose=False,
                                    custom_translation_table={torch.ops.prims.hypot.default: _hypot})
    with atomic_path(out) as tmp:
        program.save(str(tmp), external_data=False)
    return Path(out)
