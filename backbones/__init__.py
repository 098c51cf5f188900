"""Transformer and Perceiver modules shared by every domain (mixture-of-experts layers: issue 22)."""
from backbones.attention import CrossAttention
from backbones.perceiver import PerceiverIO, PerceiverResampler
from backbones.transformer import Block, ClassAttentionBlock, FeedForward, SetTransformer, TransformerConfig

__all__ = ["CrossAttention", "Block", "ClassAttentionBlock", "FeedForward", "SetTransformer", "TransformerConfig",
           "PerceiverIO", "PerceiverResampler"]
