"""Track building from scored edges and the physics metrics every tracker here is judged by.

Tracks are the connected components of the edges kept above a threshold (scipy.sparse.csgraph), with at
least ``min_hits`` hits; a hit belongs to at most one track, ``-1`` marks unassigned hits.

Matching is double-majority: a track matches the particle that owns most of its hits when that particle owns
more than half of the track's hits and more than half of that particle's hits are on the track. Tracking
efficiency counts reconstructable particles (pT above the cut, at least 3 hits) matched by some track; fake
rate is the fraction of tracks that match nothing. Duplicates cannot pass double-majority matching (two tracks
cannot both hold more than half of a particle's hits), so the duplicate rate uses the looser purity match (more
than half of the track's hits from one particle): the fraction of purity-matched tracks whose particle already
has one, i.e. particles split into several tracks. The TrackML score (Amrouche et al. 2019) sums the weights
of the majority hits of matched tracks, with hit weights from the hit's order along its particle (larger at
both ends, particles with fewer than 4 hits weigh 0) times a pT weight (0.2 below 0.5 GeV rising to 1 at
3 GeV), normalised to 1 per event; here a particle's hits are ordered by layer (barrel only).
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

ORDER_PROPOSAL = (10.0, 8.0, 6.0, 5.0, 3.0, 3.0, 3.0, 5.0, 6.0)


def build_tracks(n_hits: int, senders: np.ndarray, receivers: np.ndarray, keep: np.ndarray,
                 min_hits: int = 3) -> np.ndarray:
    """Track label per hit (``-1``: none) from the connected components of the kept edges."""
    adjacency = coo_matrix((np.ones(int(keep.sum())), (senders[keep], receivers[keep])), shape=(n_hits, n_hits))
    _, labels = connected_components(adjacency, directed=False)
    sizes = np.bincount(labels, minlength=n_hits)
    labels = np.where(sizes[labels] >= min_hits, labels, -1)
    _, relabelled = np.unique(labels, return_inverse=True)  # compact ids, -1 stays first
    return np.where(labels >= 0, relabelled - (labels.min() < 0), -1)


def order_weight(n_hits: int) -> np.ndarray:
    """TrackML's weights of the hits of an ``n_hits`` particle, in order, summing to 1 (0 below 4 hits)."""
    if n_hits < 4:
        return np.zeros(n_hits)
    n = min(n_hits, 20)
    supports = np.arange(len(ORDER_PROPOSAL)) * (n - 1) / (len(ORDER_PROPOSAL) - 1)
    w = np.interp(np.arange(n), supports, ORDER_PROPOSAL)
    return np.concatenate([w / w.sum(), np.zeros(n_hits - n)])


def pt_weight(pt: np.ndarray) -> np.ndarray:
    return np.interp(pt, [0.05, 0.5, 3.0], [0.2, 0.2, 1.0], left=0.0, right=1.0)


def hit_weights(layer: np.ndarray, particle_id: np.ndarray, particle_pt: np.ndarray) -> np.ndarray:
    """Per-hit TrackML weights (noise hits 0), normalised to sum to 1."""
    w = np.zeros(len(layer))
    real = np.flatnonzero(particle_id >= 0)
    real = real[np.lexsort((layer[real], particle_id[real]))]  # by particle, then along it (by layer)
    pid = particle_id[real]
    n_hits = np.bincount(pid)[pid]
    first = np.searchsorted(pid, pid)
    rank = np.arange(len(real)) - first
    for n in np.unique(n_hits):
        at = n_hits == n
        w[real[at]] = order_weight(int(n))[rank[at]]
    w[real] *= pt_weight(particle_pt[pid])
    total = w.sum()
    return w / total if total > 0 else w


def match_tracks(labels: np.ndarray, particle_id: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per track: majority particle (``-1`` for noise), its hits on the track, and whether it double-matches."""
    n_tracks = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    particle_hits = np.bincount(particle_id[particle_id >= 0], minlength=1)
    major, major_hits, good = np.full(n_tracks, -1), np.zeros(n_tracks, np.int64), np.zeros(n_tracks, bool)
    on_track = labels >= 0
    pairs, counts = np.unique(np.column_stack([labels[on_track], particle_id[on_track]]), axis=0, return_counts=True)
    track_size = np.bincount(labels[on_track], minlength=n_tracks)
    for (track, pid), count in zip(pairs, counts):
        if count > major_hits[track]:
            major[track], major_hits[track] = pid, count
    real = major >= 0
    good[real] = (major_hits[real] * 2 > track_size[real]) & (major_hits[real] * 2 > particle_hits[major[real]])
    return major, major_hits, good


def matched_particles(labels: np.ndarray, particle_id: np.ndarray, n_particles: int) -> np.ndarray:
    """Per particle: whether some track double-matches it."""
    major, _, good = match_tracks(labels, particle_id)
    return _matched(major, good, n_particles)


def _matched(major: np.ndarray, good: np.ndarray, n_particles: int) -> np.ndarray:
    matched = np.zeros(n_particles, bool)
    matched[major[good]] = True
    return matched


def reconstructable(particle_id: np.ndarray, particle_pt: np.ndarray, pt_min: float = 1.0) -> np.ndarray:
    """Per particle: pT above the cut and at least 3 hits."""
    n_hits_of = np.bincount(particle_id[particle_id >= 0], minlength=len(particle_pt))
    return (particle_pt > pt_min) & (n_hits_of >= 3)


def tracking_metrics(labels: np.ndarray, layer: np.ndarray, particle_id: np.ndarray, particle_pt: np.ndarray,
                     pt_min: float = 1.0) -> dict[str, float]:
    """Efficiency (pT > pt_min, >= 3 hits), fake and duplicate rates, and the TrackML score of one event;
    counts come along so events can be pooled."""
    major, major_hits, good = match_tracks(labels, particle_id)
    matched = _matched(major, good, len(particle_pt))
    wanted = reconstructable(particle_id, particle_pt, pt_min)
    weights = hit_weights(layer, particle_id, particle_pt)
    on = np.flatnonzero(labels >= 0)
    majority = on[good[labels[on]] & (particle_id[on] == major[labels[on]])]  # majority hits of matched tracks
    score = weights[majority].sum()
    size = np.bincount(labels[labels >= 0], minlength=len(major))
    pure = major[(major >= 0) & (major_hits * 2 > size)]  # purity-matched tracks' particles
    return {"reconstructable": int(wanted.sum()), "matched": int((matched & wanted).sum()),
            "tracks": len(good), "fakes": int((~good).sum()), "pure_tracks": len(pure),
            "duplicates": len(pure) - len(np.unique(pure)), "trackml_score": float(score)}


def pooled(rows: list[dict[str, float]]) -> dict[str, float]:
    """Efficiency, fake rate, duplicate rate and mean TrackML score over events."""
    total = {k: sum(r[k] for r in rows) for k in ("reconstructable", "matched", "tracks", "fakes", "pure_tracks",
                                                  "duplicates")}
    return {"efficiency": total["matched"] / max(total["reconstructable"], 1),
            "fake_rate": total["fakes"] / max(total["tracks"], 1),
            "duplicate_rate": total["duplicates"] / max(total["pure_tracks"], 1),
            "trackml_score": float(np.mean([r["trackml_score"] for r in rows])) if rows else 0.0}
