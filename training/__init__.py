"""The shared training loop and run protocol: Trainer, recipes (train / load), reports, checkpoints,
torchrun/DDP, metric logs, schedules and seeding."""
from training.adversarial import AdversarialConfig, AdversarialTrainer, GanLosses
from training.recipe import Built, Command, Recipe, load, read_run, train
from training.report import Column, DemoRow, Report, Row, read_report
from training.seeding import seed_everything
from training.trainer import Trainer, TrainerConfig

__all__ = ["Trainer", "TrainerConfig", "AdversarialTrainer", "AdversarialConfig", "GanLosses", "Recipe", "Built",
           "Command", "train", "load", "read_run", "Report", "Row", "Column", "DemoRow", "read_report",
           "seed_everything"]
