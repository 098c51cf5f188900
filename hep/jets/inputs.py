"""Tagger inputs from jet ROOT files: padded per-particle arrays through the YAML data config
(``particles.yaml``: log pT, log E, log pT/pT_jet, log E/E_jet, d_eta, d_phi, dR; points (d_eta, d_phi);
four-vectors), and Particle Transformer's pairwise features computed from the four-vectors:
``ln Delta``, ``ln kT = ln(min(pT_a, pT_b) Delta)``, ``ln z = ln(min(pT_a, pT_b) / (pT_a + pT_b))``,
``ln m^2`` of the pair (Qu, Li & Qian 2022, eq. 3); self-pairs and padding are 0.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.root import DataConfig, iterate, padded

DEFAULT_CONFIG = Path(__file__).with_name("particles.yaml")
VERTEX_CONFIG = Path(__file__).with_name("vertices.yaml")  # the particles plus tracks and vertices


@dataclass(frozen=True)
class JetBatch:
    """``points [B, 2, L]``, ``features [B, 7, L]``, ``vectors [B, 4, L]`` (px, py, pz, E), ``mask [B, L]``,
    ``label [B]``; with a vertex data config (``vertices.yaml``) also the second modality: ``tracks [B, 6, L]``
    (impact parameters per constituent, zeros for neutral ones), ``vertices [B, 7, V]`` and ``vertex_mask
    [B, V]`` (secondary vertices); None otherwise."""

    points: torch.Tensor
    features: torch.Tensor
    vectors: torch.Tensor
    mask: torch.Tensor
    label: torch.Tensor
    tracks: torch.Tensor | None = None
    vertices: torch.Tensor | None = None
    vertex_mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.label)

    def _map(self, fn) -> "JetBatch":
        return JetBatch(**{f.name: None if getattr(self, f.name) is None else fn(f.name, getattr(self, f.name))
                           for f in fields(self)})

    def __getitem__(self, index: slice) -> "JetBatch":
        """The jets in ``index`` (a slice or index tensor)."""
        return self._map(lambda _, t: t[index])

    def trimmed(self) -> "JetBatch":
        """The same jets with the padding cut to the longest jet (attention cost grows as L^2) and to the jet
        with the most vertices."""
        length = max(int(self.mask.sum(1).max()), 1)
        vertices = 1 if self.vertex_mask is None else max(int(self.vertex_mask.sum(1).max()), 1)
        cut = {"points": length, "features": length, "vectors": length, "mask": length, "tracks": length,
               "vertices": vertices, "vertex_mask": vertices}
        return self._map(lambda name, t: t[..., :cut[name]] if name in cut else t)

    def to(self, device) -> "JetBatch":
        return self._map(lambda _, t: t.to(device))


def chunk_batch(chunk, config: DataConfig, where: str) -> JetBatch:
    """The jets of one chunk of records (:func:`datasets.root.iterate`) as a padded batch (zeros where the mask
    is False); ``label`` is -1 for every jet when the records have no ``label`` (a user's unlabelled file).
    Tracks and vertices are read when the config has ``trk_features`` and ``sv_features`` inputs."""
    arrays = padded(chunk, config, where)
    mask = torch.from_numpy(arrays["pf_points"][1])
    zero = ~mask[:, None, :]

    def channels(name: str) -> torch.Tensor:
        return torch.from_numpy(arrays[name][0]).masked_fill(zero, 0)

    labels = np.asarray(chunk["label"]) if "label" in chunk.fields else np.full(len(chunk), -1)
    second = {}
    if "trk_features" in arrays and "sv_features" in arrays:
        vertex_mask = torch.from_numpy(arrays["sv_features"][1])
        second = {"tracks": channels("trk_features"), "vertex_mask": vertex_mask,
                  "vertices": torch.from_numpy(arrays["sv_features"][0]).masked_fill(~vertex_mask[:, None, :], 0)}
    return JetBatch(channels("pf_points"), channels("pf_features"), channels("pf_vectors"), mask,
                    torch.from_numpy(labels.astype(np.int64)), **second)


def load_jets(files, config_path: str | Path | None = None, limit: int | None = None,
              progress: bool = False) -> JetBatch:
    """All jets of ``files`` as one padded batch (zeros where the mask is False)."""
    config = DataConfig.from_yaml(config_path or DEFAULT_CONFIG)
    where = str(files) if isinstance(files, (str, Path)) else ", ".join(map(str, files))
    parts, count = [], 0
    for chunk in iterate(files, config, progress=progress):
        parts.append(chunk_batch(chunk, config, where))
        count += len(parts[-1])
        if limit is not None and count >= limit:
            break
    if not parts:
        raise ValueError(f"{files}: no jets passed the data config")
    jets = concatenate(parts)
    return jets[:limit] if limit is not None else jets


def real_pairs(vectors: torch.Tensor, mask: torch.Tensor,
               eps: float = 1e-8) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """Every pair ``i < j`` of real particles of each jet: indices ``(jet, i, j)`` and ``[P, 4]`` ln Delta, ln kT,
    ln z, ln m^2. The features are symmetric, so half the pairs and none of the padding carry them all."""
    length = mask.shape[1]
    upper = torch.ones(length, length, dtype=torch.bool, device=mask.device).triu(1)
    jet, i, j = (mask[:, :, None] & mask[:, None, :] & upper).nonzero(as_tuple=True)
    px, py, pz, e = vectors.unbind(1)
    pt = torch.hypot(px, py).clamp(min=eps)
    rapidity = 0.5 * torch.log((e + pz).clamp(min=eps) / (e - pz).clamp(min=eps))
    phi = torch.atan2(py, px)
    pt_i, pt_j = pt[jet, i], pt[jet, j]
    d_rap = rapidity[jet, i] - rapidity[jet, j]
    d_phi = torch.remainder(phi[jet, i] - phi[jet, j] + torch.pi, 2 * torch.pi) - torch.pi
    delta = torch.hypot(d_rap, d_phi).clamp(min=eps)
    pt_min = torch.minimum(pt_i, pt_j)
    # m^2 = 2 pT_a pT_b (cosh dy - cos dphi): exact for massless constituents and free of the cancellation
    # in (E_a + E_b)^2 - |p_a + p_b|^2 that ruins collinear pairs in float32
    m2 = 2 * pt_i * pt_j * (torch.cosh(d_rap) - torch.cos(d_phi))
    features = torch.stack([delta.log(), (pt_min * delta).clamp(min=eps).log(),
                            (pt_min / (pt_i + pt_j)).clamp(min=eps).log(), m2.clamp(min=eps).log()], dim=1)
    return (jet, i, j), features


def pair_features(vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[B, 4, L, L]``: :func:`real_pairs` as a dense symmetric array; self-pairs and padding are 0."""
    (jet, i, j), features = real_pairs(vectors, mask)
    dense = features.new_zeros(mask.shape[0], mask.shape[1], mask.shape[1], 4)
    return dense.index_put((jet, i, j), features).index_put((jet, j, i), features).permute(0, 3, 1, 2)


class JetSet(Dataset):
    """Indexable view of a :class:`JetBatch` for the Trainer."""

    def __init__(self, jets: JetBatch) -> None:
        self.jets = jets

    def __len__(self) -> int:
        return len(self.jets.label)

    def __getitem__(self, i: int) -> JetBatch:
        return self.jets[i:i + 1]


def concatenate(batches: list[JetBatch]) -> JetBatch:
    """One batch of the jets of ``batches`` in order (all padded to the same lengths)."""
    def cat(name: str) -> torch.Tensor | None:
        parts = [getattr(b, name) for b in batches]
        return None if any(p is None for p in parts) else torch.cat(parts)

    return JetBatch(**{f.name: cat(f.name) for f in fields(JetBatch)})


def collate(items: list[JetBatch]) -> JetBatch:
    """Concatenate single jets and cut the padding to the longest of them."""
    return concatenate(items).trimmed()
