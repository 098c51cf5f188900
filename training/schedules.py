"""Learning-rate schedules as multiplicative factors for ``torch.optim.lr_scheduler.LambdaLR``."""
from __future__ import annotations

import math
from collections.abc import Callable

Factor = Callable[[int], float]


def constant(warmup_steps: int = 0) -> Factor:
    """1 after a linear warm-up."""
    return lambda step: min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0


def exponential_decay(lr_init: float, lr_final: float, decay_steps: int) -> Factor:
    """GNS (Sanchez-Gonzalez et al. 2020): ``lr = lr_final + (lr_init - lr_final) * 0.1 ** (step / decay_steps)``."""
    if lr_init <= 0 or decay_steps <= 0:
        raise ValueError("exponential_decay needs lr_init > 0 and decay_steps > 0")
    return lambda step: (lr_final + (lr_init - lr_final) * 0.1 ** (step / decay_steps)) / lr_init


def cosine(total_steps: int, warmup_steps: int = 0, final_factor: float = 0.0) -> Factor:
    """Linear warm-up then half a cosine from 1 down to ``final_factor`` at ``total_steps``."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return final_factor + (1 - final_factor) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def flat_decay(total_steps: int, decay_fraction: float = 0.3, final_factor: float = 0.01) -> Factor:
    """weaver-core's ``flat+decay``: 1 for the first ``1 - decay_fraction`` of the steps, then an exponential
    decay reaching ``final_factor`` at ``total_steps`` (weaver steps it per epoch; this is continuous)."""
    if not 0 < decay_fraction <= 1 or not 0 < final_factor <= 1:
        raise ValueError("flat_decay needs 0 < decay_fraction <= 1 and 0 < final_factor <= 1")
    start = total_steps * (1 - decay_fraction)

    def factor(step: int) -> float:
        progress = min(1.0, max(0.0, step - start) / max(1.0, total_steps - start))
        return final_factor ** progress
    return factor
