"""Numerical solvers that make the ground truth the learned simulators are trained and judged on."""
