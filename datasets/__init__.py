"""On-disk schemas, atomic writers, readers and the dataset registry (no model code).

Readers and writers of every schema in docs/schemas.md: particle trajectories (DeepMind's layout), mesh
trajectories (MeshGraphNets'), CaloChallenge showers, radar (pysteps' xarray model; NetCDF, Zarr, ODIM) and
ROOT trees through weaver-style data configs.
"""
from datasets.atomic import atomic_open, atomic_path
from datasets.meshes import MeshTrajectory, MeshTrajectoryReader, write_mesh_trajectories
from datasets.radar import open_radar, read_odim, write_forecast, write_radar
from datasets.root import DataConfig, RootWriter, iterate, read
from datasets.showers import CaloGeometry, read_showers, write_showers
from datasets.trajectories import Trajectory, TrajectoryReader, write_trajectories

__all__ = ["atomic_open", "atomic_path", "Trajectory", "TrajectoryReader", "write_trajectories", "MeshTrajectory",
           "MeshTrajectoryReader", "write_mesh_trajectories", "CaloGeometry", "read_showers", "write_showers",
           "open_radar", "write_radar", "read_odim", "write_forecast", "DataConfig", "read", "iterate", "RootWriter"]
