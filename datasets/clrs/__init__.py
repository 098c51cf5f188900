"""Executions of classical algorithms with their intermediate states, in the CLRS benchmark's encoding.

``specs`` says what each algorithm's inputs, hints (the states between steps) and outputs are; ``algorithms``
runs them and records every state; ``samplers`` draws the benchmark's random instances and pads batches.
"""
from datasets.clrs.algorithms import ALGORITHMS, Probes
from datasets.clrs.samplers import Batch, ClrsData, collate, sample
from datasets.clrs.specs import SPECS, Feature, Location, Stage, Type

__all__ = ["ALGORITHMS", "SPECS", "Batch", "ClrsData", "Feature", "Location", "Probes", "Stage", "Type",
           "collate", "sample"]
