"""Charged-particle tracking: TrackML-like barrel simulation in ROOT, hit graphs, an interaction-network edge
classifier, track building and a Hough-transform baseline."""
