"""Transformer, Perceiver and mixture-of-experts modules shared by every domain."""
