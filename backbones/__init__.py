"""Transformer, Perceiver and routed mixture-of-experts modules shared by every domain."""
from backbones.attention import CrossAttention
from backbones.perceiver import PerceiverIO, PerceiverResampler
from backbones.routing import RoutedFeedForward, RouterConfig
from backbones.transformer import Block, ClassAttentionBlock, FeedForward, SetTransformer, TransformerConfig

__all__ = ["CrossAttention", "Block", "ClassAttentionBlock", "FeedForward", "SetTransformer", "TransformerConfig",
           "PerceiverIO", "PerceiverResampler", "RoutedFeedForward", "RouterConfig"]
