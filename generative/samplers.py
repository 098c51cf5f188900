"""Samplers for diffusion models, separate from the networks (the pipeline/scheduler split of HF diffusers).

Every sampler has one interface: ``set_timesteps(n)`` chooses ``n`` sampling steps and fills ``timesteps``
(the noise levels at which the model is called, in order), ``step(model_output, t, x)`` advances the sample
by one model call made at ``t``, and ``sample(model, shape)`` runs the loop: ``x`` starts as Gaussian noise
times ``init_noise_sigma`` and every ``t`` of ``timesteps`` gives ``x = step(model(x, t), t, x)``.
DDPM and DDIM call a network trained on a discrete VP schedule at integer training steps; ``EDMSampler``
(Karras et al. 2022) calls a denoiser ``D(x, sigma)`` at continuous noise levels, two calls per step but
the last (Heun), so its ``timesteps`` repeat each inner sigma as diffusers' Heun scheduler does.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from generative.schedules import Prediction, VPSchedule

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def classifier_free_guidance(conditional: torch.Tensor, unconditional: torch.Tensor, scale: float) -> torch.Tensor:
    """Ho & Salimans (2022): ``uncond + scale (cond - uncond)``; scale 1 is the conditional model."""
    return unconditional + scale * (conditional - unconditional)


class DDPMSampler:
    """Ancestral sampling (Ho et al. 2020), on any subset of the training steps."""

    init_noise_sigma = 1.0

    def __init__(self, schedule: VPSchedule, prediction: Prediction = "epsilon",
                 clip_sample: float | None = None) -> None:
        self.schedule, self.prediction, self.clip_sample = schedule, prediction, clip_sample
        self.set_timesteps(schedule.num_train_timesteps)

    def _split(self, model_output: torch.Tensor, t: int, x_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0, eps)``; with ``clip_sample`` the x0 estimate is clipped to [-c, c] and eps made consistent
        (at the noisiest steps alpha_t is tiny and the network's error in eps is amplified by sigma/alpha)."""
        x0, eps = self.schedule.split(model_output, x_t, torch.tensor(t), self.prediction)
        if self.clip_sample is not None:
            x0 = x0.clamp(-self.clip_sample, self.clip_sample)
            alpha, sigma = self.schedule.alpha_sigma(torch.tensor(t), x_t)
            eps = (x_t - alpha * x0) / sigma
        return x0, eps

    def set_timesteps(self, n: int) -> None:
        """Use ``n`` evenly spaced training steps, from the noisiest down to 0."""
        total = self.schedule.num_train_timesteps
        if not 1 <= n <= total:
            raise ValueError(f"number of sampling steps must be in 1..{total}, got {n}")
        self.timesteps = torch.linspace(total - 1, 0, n).round().long()

    def _previous(self, t: int) -> int:
        later = (self.timesteps < t).nonzero()
        return int(self.timesteps[later[0, 0]]) if len(later) else -1

    def _abar(self, t: int) -> float:
        return float(self.schedule.alphas_cumprod[t]) if t >= 0 else 1.0

    def step(self, model_output: torch.Tensor, t: int, x_t: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample ``x_prev`` from the Gaussian posterior ``q(x_prev | x_t, x0_hat)``."""
        prev = self._previous(t)
        abar_t, abar_prev = self._abar(t), self._abar(prev)
        x0, _ = self._split(model_output, t, x_t)
        alpha_step = abar_t / abar_prev
        mean = (math.sqrt(abar_prev) * (1 - alpha_step) * x0 + math.sqrt(alpha_step) * (1 - abar_prev) * x_t) \
            / (1 - abar_t)
        if prev < 0:
            return mean
        variance = (1 - abar_prev) / (1 - abar_t) * (1 - alpha_step)
        noise = torch.randn(x_t.shape, generator=generator, dtype=x_t.dtype, device=x_t.device)
        return mean + math.sqrt(variance) * noise

    @torch.no_grad()
    def sample(self, model: Model, shape: tuple[int, ...], generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> torch.Tensor:
        """Samples ``shape`` from ``model(x_t, t [B]) -> output`` at the chosen ``timesteps``."""
        x = torch.randn(shape, generator=generator, dtype=dtype, device=device)
        for t in self.timesteps.tolist():
            x = self.step(model(x, torch.full((shape[0],), t, device=device)), t, x, generator)
        return x


class DDIMSampler(DDPMSampler):
    """DDIM (Song et al. 2021): ``eta = 0`` is the deterministic probability-flow sampler, 1 is DDPM-like."""

    def __init__(self, schedule: VPSchedule, prediction: Prediction = "epsilon", eta: float = 0.0,
                 clip_sample: float | None = None) -> None:
        super().__init__(schedule, prediction, clip_sample)
        self.eta = eta

    def step(self, model_output: torch.Tensor, t: int, x_t: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        prev = self._previous(t)
        abar_t, abar_prev = self._abar(t), self._abar(prev)
        x0, eps = self._split(model_output, t, x_t)
        std = self.eta * math.sqrt((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev))
        x_prev = math.sqrt(abar_prev) * x0 + math.sqrt(max(1 - abar_prev - std ** 2, 0.0)) * eps
        if std > 0:
            x_prev = x_prev + std * torch.randn(x_t.shape, generator=generator, dtype=x_t.dtype, device=x_t.device)
        return x_prev


class EDMSampler:
    """Karras et al. (2022): preconditioned denoiser and Heun's 2nd-order sampler on the rho = 7 sigma grid.

    The network ``F(c_in x, c_noise)`` is wrapped as ``D(x, sigma) = c_skip x + c_out F`` with
    ``c_skip = s_d^2 / (sigma^2 + s_d^2)``, ``c_out = sigma s_d / sqrt(sigma^2 + s_d^2)``,
    ``c_in = 1 / sqrt(sigma^2 + s_d^2)``, ``c_noise = ln(sigma) / 4``, ``s_d = sigma_data = 0.5``.
    N steps cost 2N - 1 network evaluations.
    """

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0,
                 sigma_data: float = 0.5) -> None:
        self.sigma_min, self.sigma_max, self.rho, self.sigma_data = sigma_min, sigma_max, rho, sigma_data
        self.set_timesteps(18)

    @property
    def init_noise_sigma(self) -> float:
        return float(self.grid[0])

    def sigmas(self, n: int) -> torch.Tensor:
        """``sigma_0 > ... > sigma_{n-1}``, then 0 (float64)."""
        i = torch.arange(n, dtype=torch.float64)
        lo, hi = self.sigma_min ** (1 / self.rho), self.sigma_max ** (1 / self.rho)
        grid = (hi + i / max(n - 1, 1) * (lo - hi)) ** self.rho
        return torch.cat([grid, torch.zeros(1, dtype=torch.float64)])

    def set_timesteps(self, n: int) -> None:
        """``n`` Heun steps on the rho-spaced grid: ``timesteps`` = sigma_0, then each inner sigma twice (the
        corrector of one step and the predictor of the next): 2n - 1 denoiser calls."""
        if n < 1:
            raise ValueError(f"number of sampling steps must be at least 1, got {n}")
        self.grid = self.sigmas(n)
        self.timesteps = torch.cat([self.grid[:1], self.grid[1:-1].repeat_interleave(2)])
        self._i, self._predictor = 0, None

    def preconditioning(self, sigma: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(c_skip, c_out, c_in, c_noise)`` at noise level ``sigma``."""
        sd2 = self.sigma_data ** 2
        return (sd2 / (sigma ** 2 + sd2), sigma * self.sigma_data / (sigma ** 2 + sd2).sqrt(),
                1 / (sigma ** 2 + sd2).sqrt(), sigma.log() / 4)

    def denoiser(self, network: Model) -> Model:
        """``D(x, sigma)`` from a raw network ``F(x_in, c_noise)`` through the preconditioning."""
        def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            c_skip, c_out, c_in, c_noise = (c.to(x.dtype) for c in self.preconditioning(sigma))
            return c_skip * x + c_out * network(c_in * x, c_noise.expand(x.shape[0]))
        return denoise

    def step(self, model_output: torch.Tensor, t: float | torch.Tensor, x: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """One call of Heun's method on ``dx/dsigma = (x - D(x, sigma)) / sigma``, ``model_output = D(x, t)``:
        the Euler predictor from ``sigma_i`` to ``sigma_{i+1}``, or (on the repeated sigma) the trapezoidal
        corrector of that step. Deterministic: ``generator`` is unused."""
        derivative = (x - model_output) / float(t)
        if self._predictor is not None:  # corrector: average the slopes at both ends of the step
            x_i, d_i, s, s_next = self._predictor
            self._predictor = None
            return x_i + (s_next - s) * 0.5 * (d_i + derivative)
        s, s_next = float(self.grid[self._i]), float(self.grid[self._i + 1])
        self._i += 1
        if s_next > 0:
            self._predictor = (x, derivative, s, s_next)
        return x + (s_next - s) * derivative

    @torch.no_grad()
    def sample(self, model: Model, shape: tuple[int, ...], generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> torch.Tensor:
        """Samples ``shape`` from a denoiser ``model(x, sigma) -> D(x, sigma)`` at the chosen ``timesteps``."""
        self._i, self._predictor = 0, None
        x = torch.randn(shape, generator=generator, dtype=dtype, device=device) * self.init_noise_sigma
        for t in self.timesteps.to(device):
            x = self.step(model(x, t), t, x)
        return x


Sampler = DDPMSampler | EDMSampler  # DDIMSampler is a DDPMSampler


def vp_denoiser(model: Model, schedule: VPSchedule, prediction: Prediction = "epsilon") -> Model:
    """An EDM denoiser ``D(x, sigma)`` from a network trained on a discrete VP schedule, so the Heun sampler
    can run it (Karras et al. 2022, sec. 3): in the variance-exploding frame ``x = x_t / alpha_t`` with
    ``sigma = sigma_t / alpha_t``; the network sees ``x_t = x / sqrt(1 + sigma^2)`` at the fractional
    timestep whose sigma matches (log-linear interpolation of the schedule's table)."""
    table = ((1 - schedule.alphas_cumprod) / schedule.alphas_cumprod).sqrt().log()  # increasing in t

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        log_sigma = sigma.double().log().clamp(float(table[0]), float(table[-1])).reshape(1).cpu()
        i = torch.searchsorted(table, log_sigma).clamp(1, len(table) - 1)
        frac = (log_sigma - table[i - 1]) / (table[i] - table[i - 1])
        t = (i - 1 + frac).to(x.dtype).to(x.device).expand(x.shape[0])
        alpha = float(1 / (1 + sigma.double() ** 2).sqrt())
        sigma_t = alpha * float(sigma)
        x_t = alpha * x
        out = model(x_t, t)
        if prediction == "epsilon":
            return x - float(sigma) * out
        if prediction == "sample":
            return out
        if prediction == "v_prediction":
            return alpha * x_t - sigma_t * out
        raise ValueError(f"prediction must be epsilon, sample or v_prediction, got {prediction!r}")
    return denoise


def edm_sampler_for(schedule: VPSchedule, sigma_max: float = 80.0) -> EDMSampler:
    """An :class:`EDMSampler` whose sigma range lies inside a VP schedule's (for :func:`vp_denoiser`)."""
    sigmas = ((1 - schedule.alphas_cumprod) / schedule.alphas_cumprod).sqrt()
    return EDMSampler(sigma_min=float(sigmas[0]), sigma_max=min(sigma_max, float(sigmas[-1])))

