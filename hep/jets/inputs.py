"""Tagger inputs from jet ROOT files: padded per-particle arrays through the YAML data config
(``particles.yaml``: log pT, log E, log pT/pT_jet, log E/E_jet, d_eta, d_phi, dR; points (d_eta, d_phi);
four-vectors), and Particle Transformer's pairwise features computed from the four-vectors:
``ln Delta``, ``ln kT = ln(min(pT_a, pT_b) Delta)``, ``ln z = ln(min(pT_a, pT_b) / (pT_a + pT_b))``,
``ln m^2`` of the pair (Qu, Li & Qian 2022, eq. 3); self-pairs and padding are 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.root import DataConfig, iterate, padded

DEFAULT_CONFIG = Path(__file__).with_name("particles.yaml")


@dataclass(frozen=True)
class JetBatch:
    """``points [B, 2, L]``, ``features [B, 7, L]``, ``vectors [B, 4, L]`` (px, py, pz, E), ``mask [B, L]``,
    ``label [B]``."""

    points: torch.Tensor
    features: torch.Tensor
    vectors: torch.Tensor
    mask: torch.Tensor
    label: torch.Tensor

    def __len__(self) -> int:
        return len(self.label)

    def __getitem__(self, index: slice) -> "JetBatch":
        """The jets in ``index`` (a slice or index tensor)."""
        return JetBatch(self.points[index], self.features[index], self.vectors[index], self.mask[index],
                        self.label[index])

    def trimmed(self) -> "JetBatch":
        """The same jets with the padding cut to the longest jet (attention cost grows as L^2)."""
        length = max(int(self.mask.sum(1).max()), 1)
        return JetBatch(self.points[..., :length], self.features[..., :length], self.vectors[..., :length],
                        self.mask[:, :length], self.label)

    def to(self, device) -> "JetBatch":
        return JetBatch(*(t.to(device) for t in (self.points, self.features, self.vectors, self.mask, self.label)))


def chunk_batch(chunk, config: DataConfig, where: str) -> JetBatch:
    """The jets of one chunk of records (:func:`datasets.root.iterate`) as a padded batch (zeros where the mask
    is False); ``label`` is -1 for every jet when the records have no ``label`` (a user's unlabelled file)."""
    arrays = padded(chunk, config, where)
    mask = torch.from_numpy(arrays["pf_points"][1])
    zero = ~mask[:, None, :]

    def channels(name: str) -> torch.Tensor:
        return torch.from_numpy(arrays[name][0]).masked_fill(zero, 0)

    labels = np.asarray(chunk["label"]) if "label" in chunk.fields else np.full(len(chunk), -1)
    return JetBatch(channels("pf_points"), channels("pf_features"), channels("pf_vectors"), mask,
                    torch.from_numpy(labels.astype(np.int64)))


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
    """One batch of the jets of ``batches`` in order (all padded to the same length)."""
    return JetBatch(*(torch.cat([getattr(b, f) for b in batches]) for f in ("points", "features", "vectors", "mask",
                                                                             "label")))


def collate(items: list[JetBatch]) -> JetBatch:
    """Concatenate single jets and cut the padding to the longest of them."""
    return concatenate(items).trimmed()
