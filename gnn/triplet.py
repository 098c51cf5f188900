"""The triplet-GMPNN processor of Ibarz et al. (2022), "A Generalist Neural Algorithmic Learner", on dense
graphs: every node pair is an edge (the adjacency arrives as edge features), as the CLRS processors run.

One step, for node latents ``h`` of nodes ``x`` (``z_x = [node features_x, h_x]``):

- messages ``m_xy = MLP(relu(W1 z_x + W2 z_y + W3 e_xy + W4 g))`` from sender ``x`` to receiver ``y``,
  max-aggregated over the senders;
- ``h'_y = LayerNorm(relu(U1 z_y + U2 max_x m_xy))``, gated: ``h'_y <- s h'_y + (1 - s) h_y`` with
  ``s = sigmoid(V3 relu(V1 z_y + V2 max_x m_xy))`` and ``V3``'s bias starting at -3 (mostly keep the state);
- triplet (edge) messages ``t_ijk = T1 z_i + T2 z_j + T3 z_k + T4 e_ij + T5 e_ik + T6 e_jk + T7 g`` of width 8,
  max over ``i``, then ``e'_jk = relu(T8 max_i t_ijk)``: edge latents that reason over every third node, which
  pointer decoders read.
"""
from __future__ import annotations

import torch
from torch import nn

NEG = -1e9


class TripletGMPNN(nn.Module):
    """One gated message-passing step with triplet edge messages over dense ``[B, N, ...]`` graphs.

    Args:
        dim: width of node, edge and graph features and of the latents.
        triplet_dim: width of the triplet messages before their output layer (8 in the paper).
        layer_norm: LayerNorm on the updated node latents.
        gated: the update gate.
    """

    def __init__(self, dim: int, triplet_dim: int = 8, layer_norm: bool = True, gated: bool = True) -> None:
        super().__init__()
        self.send, self.receive = nn.Linear(2 * dim, dim), nn.Linear(2 * dim, dim)
        self.edge, self.graph = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.message = nn.Sequential(nn.ReLU(), nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.own, self.aggregated = nn.Linear(2 * dim, dim), nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim) if layer_norm else nn.Identity()
        self.gate = nn.ModuleList([nn.Linear(2 * dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)]) if gated \
            else None
        if self.gate is not None:
            nn.init.constant_(self.gate[2].bias, -3.0)
        self.tri_nodes = nn.ModuleList([nn.Linear(2 * dim, triplet_dim) for _ in range(3)])
        self.tri_edges = nn.ModuleList([nn.Linear(dim, triplet_dim) for _ in range(3)])
        self.tri_graph = nn.Linear(dim, triplet_dim)
        self.tri_out = nn.Linear(triplet_dim, dim)

    def forward(self, node: torch.Tensor, edge: torch.Tensor, graph: torch.Tensor, hidden: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step.

        Args:
            node: ``[B, N, D]`` encoded node features.
            edge: ``[B, N, N, D]`` encoded features of each ordered pair (sender, receiver).
            graph: ``[B, D]`` encoded graph features.
            hidden: ``[B, N, D]`` node latents of the previous step.
            mask: ``[B, N]`` bool, real (not padded) nodes.

        Returns:
            ``(hidden [B, N, D], edge latents [B, N, N, D])``.
        """
        z = torch.cat([node, hidden], -1)
        messages = (self.send(z)[:, :, None] + self.receive(z)[:, None] + self.edge(edge)
                    + self.graph(graph)[:, None, None])
        messages = self.message(messages)
        senders = mask[:, :, None, None]
        pooled = messages.masked_fill(~senders, NEG).amax(1).masked_fill(~mask[..., None], 0.0)
        out = self.norm(torch.relu(self.own(z) + self.aggregated(pooled)))
        if self.gate is not None:
            g1, g2, g3 = self.gate
            s = torch.sigmoid(g3(torch.relu(g1(z) + g2(pooled))))
            out = s * out + (1 - s) * hidden
        return out, self.triplets(z, edge, graph, mask)

    def triplets(self, z: torch.Tensor, edge: torch.Tensor, graph: torch.Tensor, mask: torch.Tensor
                 ) -> torch.Tensor:
        """``relu(T8 max_i t_ijk)``: ``[B, N, N, D]`` edge latents of the pairs ``(j, k)``."""
        t1, t2, t3 = (f(z) for f in self.tri_nodes)
        e1, e2, e3 = (f(edge) for f in self.tri_edges)
        # Only t1_i + e1_ij + e2_ik depends on i: take the max over i of that [B, N, N, N, 8] sum alone (one
        # tensor of that size, not one per term) and add the i-free terms to the [B, N, N, 8] result.
        rows = (t1[:, :, None] + e1).masked_fill(~mask[:, :, None, None], NEG)
        t = (rows[:, :, :, None] + e2[:, :, None]).amax(1)
        t = t + t2[:, :, None] + t3[:, None] + e3 + self.tri_graph(graph)[:, None, None]
        return torch.relu(self.tri_out(t))
