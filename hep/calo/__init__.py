"""Calorimeter showers: GFlash reference showers, a conditional diffusion generator, CaloChallenge metrics."""
