"""Diffusion (noise schedules, DDPM / DDIM / EDM samplers, U-Net, KL autoencoder), flow matching (straight
paths, Euler / Heun ODE samplers) and GAN parts.

Networks and samplers are separate, as in diffusers: a sampler takes any ``model(x, t)`` and its
``set_timesteps`` / ``step`` / ``sample`` are the same for all three.
"""
from generative.autoencoder import AutoencoderConfig, KLAutoencoder
from generative.flow_matching import FlowSampler, flow_matching_loss, sample_times
from generative.gan import (
                            DBlock,
                            GBlock,
                            LBlock,
                            SelfAttention2d,
                            hinge_discriminator_loss,
                            hinge_generator_loss,
                            sn_conv,
)
from generative.objectives import denoising_loss, sliced_wasserstein
from generative.samplers import (
                            DDIMSampler,
                            DDPMSampler,
                            EDMSampler,
                            Sampler,
                            classifier_free_guidance,
                            edm_sampler_for,
                            vp_denoiser,
)
from generative.schedules import VPSchedule
from generative.unet import UNet, UNetConfig

__all__ = ["VPSchedule", "DDPMSampler", "DDIMSampler", "EDMSampler", "Sampler", "edm_sampler_for", "vp_denoiser",
           "classifier_free_guidance", "denoising_loss", "FlowSampler", "flow_matching_loss", "sample_times",
           "sliced_wasserstein", "UNet", "UNetConfig", "KLAutoencoder",
           "AutoencoderConfig", "DBlock", "GBlock", "LBlock", "SelfAttention2d", "sn_conv", "hinge_discriminator_loss",
           "hinge_generator_loss"]
