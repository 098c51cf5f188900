"""Learned simulators and the numerical solvers that make their ground truth."""
