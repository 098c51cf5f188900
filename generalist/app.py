"""What the generalist offers the front door: its recipe (generalist or specialist) and its evaluation."""
from __future__ import annotations

from generalist import evaluate
from generalist.train import RECIPE
from training.recipe import Command

RECIPES = [RECIPE]
COMMANDS = [Command("evaluate", "each task's metric for generalist and specialist runs beside the physics "
                    "baselines", evaluate.evaluate)]
