"""Learned simulators and the numerical solvers that make their ground truth."""
from sims.gns import GNS, GNSConfig
from sims.learned_forces import LearnedForcesRun
from sims.meshgraphnet import MeshGraphNet, MeshGraphNetConfig
from sims.train_gns import GNSRun
from sims.train_mgn import MGNRun

__all__ = ["GNS", "GNSConfig", "GNSRun", "MeshGraphNet", "MeshGraphNetConfig", "MGNRun", "LearnedForcesRun"]
