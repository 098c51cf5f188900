"""Tagger inputs and models: phi-rotation invariance of the inputs, permutation invariance and padding
blindness of every tagger, and each tagger overfitting a small set."""
import awkward as ak
import numpy as np
import pytest
import torch

from datasets.root import RootWriter
from hep.jets.inputs import JetBatch, load_jets, pair_features
from hep.jets.models import MODELS


def write_jets(path, n=64, seed=0, rotate=0.0, spoil=None):
    """Random two-blob jets (label 1: two prongs, label 0: one), written like the generator's files;
    ``spoil(p)`` may change the particle arrays first."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(5, 40, n)
    label = rng.integers(0, 2, n)
    pt = rng.exponential(20, counts.sum()) + 1
    prong = np.repeat(label, counts) * (rng.random(counts.sum()) < 0.5)
    eta = rng.normal(0, 0.1, counts.sum()) + 0.4 * prong
    phi = rng.normal(0, 0.1, counts.sum()) + 1.0 + rotate
    p = {"part_px": pt * np.cos(phi), "part_py": pt * np.sin(phi), "part_pz": pt * np.sinh(eta),
         "part_energy": pt * np.cosh(eta)}
    if spoil is not None:
        spoil(p)
    jagged = {k: ak.unflatten(v, counts) for k, v in p.items()}
    jet = {k: ak.to_numpy(ak.sum(jagged[f"part_{k}"], axis=1)) for k in ("px", "py", "pz", "energy")}
    pt = np.hypot(jet["px"], jet["py"])
    branches = {"jet_pt": pt, "jet_eta": np.arcsinh(jet["pz"] / pt),
                "jet_phi": np.arctan2(jet["py"], jet["px"]), "jet_energy": jet["energy"],
                "label": label.astype(np.int32), **jagged}
    with RootWriter(path) as out:
        out.extend("jets", branches, counter="jet_nparticles")
    return path


def test_inputs_are_invariant_under_a_rotation_in_phi(tmp_path):
    a = load_jets(write_jets(tmp_path / "a.root"))
    b = load_jets(write_jets(tmp_path / "b.root", rotate=2.0))
    assert a.features.shape == (64, 7, 128) and a.mask.sum(1).max() < 40
    assert torch.allclose(a.features, b.features, atol=1e-4) and torch.allclose(a.points, b.points, atol=1e-5)
    pa, pb = pair_features(a.vectors.double(), a.mask), pair_features(b.vectors.double(), b.mask)
    assert torch.allclose(pa, pb, atol=1e-3) and (pa[~(a.mask[:, :, None] & a.mask[:, None, :])[:, None]
                                                     .expand_as(pa)] == 0).all()


@pytest.mark.parametrize("field, value", [("part_px", np.nan), ("part_energy", -1.0)])
def test_nan_momenta_and_negative_energies_are_refused(tmp_path, field, value):
    path = write_jets(tmp_path / "bad.root", spoil=lambda p: p[field].__setitem__(7, value))
    with pytest.raises(ValueError, match=r"bad.root: variable 'part_\w+' of input .* NaN or infinite"):
        load_jets(path)


def shuffled(jets: JetBatch, seed: int) -> JetBatch:
    """Constituents permuted within each jet (padding kept at the end), padding filled with garbage."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.stack([torch.cat([torch.randperm(int(m.sum()), generator=g), torch.arange(int(m.sum()), len(m))])
                       for m in jets.mask])
    take = lambda t: torch.gather(t, 2, idx[:, None, :].expand_as(t))  # noqa: E731
    garbage = lambda t: t.masked_fill(~jets.mask[:, None, :], 7.0)  # noqa: E731
    return JetBatch(garbage(take(jets.points)), garbage(take(jets.features)), take(jets.vectors), jets.mask,
                    jets.label)


@pytest.mark.parametrize("name", ["pfn", "particlenet-lite", "part", "part-moe", "perceiver"])
def test_taggers_ignore_constituent_order_and_padding(tmp_path, name):
    jets = load_jets(write_jets(tmp_path / "j.root", n=6))
    torch.manual_seed(0)
    model = MODELS[name]().double().eval()
    double = lambda j: JetBatch(j.points.double(), j.features.double(), j.vectors.double(), j.mask, j.label)  # noqa
    with torch.no_grad():
        out = model(double(jets))
        permuted = model(double(shuffled(jets, 1)))
    assert out.shape == (6, 2)
    # ParticleNet's kNN breaks ties by index: exact only up to ties, which random floats do not have
    assert torch.allclose(out, permuted, atol=1e-8)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pfn", "particlenet-lite", "part", "part-moe", "perceiver"])
def test_each_tagger_overfits_256_jets(tmp_path, name):
    jets = load_jets(write_jets(tmp_path / "j.root", n=256, seed=3)).trimmed()
    torch.manual_seed(0)
    model = MODELS[name]()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(jets), jets.label)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(jets).argmax(1) == jets.label).float().mean())
    assert accuracy > 0.95


def test_particlenet_width_scales_every_block_and_other_taggers_refuse_it():
    from hep.jets.models import ParticleNet
    from hep.jets.train import JetRun, build_model

    default, narrow = ParticleNet(lite=True), build_model(JetRun(model="particlenet-lite", width=32))
    def channels(model):
        return [[m.out_features for m in c.h.modules() if isinstance(m, torch.nn.Linear)] for c in model.convs]

    assert channels(default) == [[32] * 3, [64] * 3]  # weaver-core's Lite, unchanged
    assert channels(narrow) == [[16] * 3, [32] * 3]
    assert channels(ParticleNet(width=128)) == [[32] * 3, [64] * 3, [128] * 3]
    with pytest.raises(ValueError, match="not pfn's"):
        build_model(JetRun(model="pfn", width=32))
