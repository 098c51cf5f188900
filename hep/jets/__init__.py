"""Jet tagging: top vs QCD jets regenerated with Pythia 8 and fastjet, taggers, baselines and evaluation.

``SAMPLE_DIR`` holds the committed sample, exactly the output of
``physml data generate jets --jets 6000 --chunk 2000 --seed 0``: 6000 balanced jets for tests, the demo and
the benchmark, without the ``gen`` extra.
"""
from pathlib import Path

SAMPLE_DIR = Path(__file__).with_name("sample")

from hep.jets.models import MODELS, ParticleFlowNetwork, ParticleNet, ParticleTransformer, PerceiverTagger  # noqa: E402

__all__ = ["SAMPLE_DIR", "MODELS", "ParticleNet", "ParticleTransformer", "ParticleFlowNetwork", "PerceiverTagger"]
