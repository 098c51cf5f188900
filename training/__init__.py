"""The shared training loop: Trainer, checkpoints, torchrun/DDP, metric logs, schedules and seeding."""
from training.seeding import seed_everything
from training.trainer import Trainer, TrainerConfig

__all__ = ["Trainer", "TrainerConfig", "seed_everything"]
