"""Jet tagging: top vs QCD jets regenerated with Pythia 8 and fastjet (next: taggers and baselines)."""
