"""What the algorithmic-reasoning app offers the front door: its recipe and its out-of-distribution evaluation."""
from __future__ import annotations

from clrs import evaluate
from clrs.train import RECIPE
from training.recipe import Command

RECIPES = [RECIPE]
COMMANDS = [Command("evaluate", "scores of trained executors on larger instances beside the published numbers",
                    evaluate.evaluate)]
