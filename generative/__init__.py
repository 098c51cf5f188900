"""Diffusion (DDPM, DDIM, EDM, latent diffusion) and GAN parts."""
