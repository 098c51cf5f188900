"""The multilayer perceptron every block is built from."""
from __future__ import annotations

from collections.abc import Sequence

from torch import nn


class MLP(nn.Sequential):
    """Linear layers with an activation between them and an optional LayerNorm on the output.

    Args:
        in_features: input width.
        hidden: widths of the hidden layers (e.g. ``(128, 128)``).
        out_features: output width.
        layer_norm: apply ``LayerNorm(out_features)`` after the last linear layer (as in GNS/MeshGraphNets).
        activation: activation module class placed after every hidden linear layer.
        dropout: dropout probability after each hidden activation.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int, layer_norm: bool = False,
                 activation: type[nn.Module] = nn.ReLU, dropout: float = 0.0) -> None:
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), activation()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        if layer_norm:
            layers.append(nn.LayerNorm(out_features))
        super().__init__(*layers)


class NormedMLP(nn.Sequential):
    """Linear (no bias), BatchNorm1d and activation for every layer, the last one included: ParticleNet's
    edge and fusion layers (weaver-core's 1x1 convolutions with batch norm) on ``[N, F]`` rows.

    Args:
        in_features: input width.
        widths: width of each layer (e.g. ``(32, 32, 32)``).
        activation: activation module class after each BatchNorm.
    """

    def __init__(self, in_features: int, widths: Sequence[int], activation: type[nn.Module] = nn.ReLU) -> None:
        layers: list[nn.Module] = []
        for width in widths:
            layers += [nn.Linear(in_features, width, bias=False), nn.BatchNorm1d(width), activation()]
            in_features = width
        super().__init__(*layers)
