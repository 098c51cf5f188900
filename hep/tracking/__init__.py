"""Charged-particle tracking: a TrackML-like barrel simulation written to ROOT (next: graphs, GNN, tracks)."""
