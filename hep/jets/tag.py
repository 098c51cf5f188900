"""``physml hep tag``: a trained tagger's scores for the jets of any ROOT files.

The files are read chunk by chunk through the tagger's data config (``particles.yaml``, or ``--data-config``
with the user's branch names), and the scores are written as a ``scores`` tree with one entry per input jet,
in input order: ``score_qcd`` and ``score_top`` (softmax probabilities, summing to 1), ``file_index`` and
``entry`` (where the jet came from), and ``label`` when the inputs have one. Entry-aligned with the input
tree, it can be used as a friend tree (``tree.AddFriend("scores", "scores.root")``) like weaver's
``predict`` output. A config with a ``selection`` is refused: dropped jets would break the alignment.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from datasets.atomic import refuse_overwriting_inputs
from datasets.root import DataConfig, RootWriter, iterate
from hep.jets.inputs import DEFAULT_CONFIG, VERTEX_CONFIG, JetBatch, chunk_batch
from hep.jets.models import MEDIA_MODELS
from hep.jets.train import RECIPE
from training.inference import compile_network, inference_device
from training.precision import autocast
from training.pretrained import Card, cards, resolve
from training.recipe import load

SHIPPED: dict[str, Card] = cards(Path(__file__).with_name("pretrained"))
CLASSES = ("qcd", "top")  # label 0 and 1 of the jet generator


def class_probabilities(model: torch.nn.Module, jets: JetBatch, device: torch.device, precision: str = "fp32",
           batch_size: int = 512) -> np.ndarray:
    """``[N, 2]`` class probabilities of ``jets`` (float32), in batches of ``batch_size`` jets.

    Args:
        model: a tagger in eval mode on ``device``.
        jets: the jets (any padding length).
        device: where the tagger runs.
        precision: ``fp32``, ``bf16`` or ``auto``.
        batch_size: jets per forward pass.
    """
    out = []
    with torch.no_grad(), autocast(precision, device):
        for start in range(0, len(jets), batch_size):
            batch = jets[start:start + batch_size].trimmed().to(device)
            out.append(torch.softmax(model(batch).float(), 1).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, len(CLASSES)), np.float32)


def tag(files: list[str], out: str = "scores.root", model: str | None = None, pretrained: str | None = None,
        data_config: str | None = None, device: str = "auto", precision: str = "fp32", batch_size: int = 512,
        compile: str = "auto") -> Path:
    """Tag the jets of ROOT files with a trained tagger; write their scores, one entry per input jet, to
    ``out`` (tree ``scores``: score_qcd, score_top, file_index, entry, and label when the inputs have one).

    Args:
        files: ROOT files with a jets tree (see ``--data-config``).
        out: the scores file (written atomically).
        model: a ``train jets`` run folder.
        pretrained: a shipped tagger instead (``physml models list``).
        data_config: YAML data config mapping your branch names to the tagger's inputs (default: the
            generator's, ``hep/jets/particles.yaml``; ``vertices.yaml`` for the taggers that read tracks).
        device: auto (CUDA when present), cpu, cuda or cuda:N.
        precision: fp32, bf16 or auto (bf16 where fast).
        batch_size: jets per forward pass.
        compile: torch.compile the tagger: auto (on CUDA only), on or off.
    """
    paths = [Path(f) for f in files]
    if not paths:
        raise ValueError("no input files given")
    refuse_overwriting_inputs(out, paths)
    where = resolve(model, pretrained, SHIPPED)
    dev = inference_device(device)
    network, run = load(where, [RECIPE], device=str(dev))
    config = DataConfig.from_yaml(data_config or (VERTEX_CONFIG if run.model in MEDIA_MODELS else DEFAULT_CONFIG))
    if config.selection:
        raise ValueError(f"{data_config}: has a 'selection'; tagging writes one score per input jet, so "
                         "remove it (and select on the scores' friend tree instead)")
    compile_network(network, compile, dev)
    total, labelled = 0, "label" in config.branches
    with RootWriter(out) as writer, tqdm(total=None, desc="tag", unit="jet") as bar:
        for index, path in enumerate(paths):
            entry = 0
            for chunk in iterate(path, config, progress=False):
                jets = chunk_batch(chunk, config, str(path))
                probs = class_probabilities(network, jets, dev, precision, batch_size)
                branches = {f"score_{name}": probs[:, i] for i, name in enumerate(CLASSES)}
                branches |= {"file_index": np.full(len(jets), index, np.int32),
                             "entry": np.arange(entry, entry + len(jets), dtype=np.int64)}
                if labelled:
                    branches["label"] = jets.label.numpy().astype(np.int32)
                writer.extend("scores", branches)
                entry += len(jets)
                bar.update(len(jets))
            total += entry
        if total == 0:
            raise ValueError(f"{', '.join(map(str, paths))}: no jets to tag")
    return Path(out)
