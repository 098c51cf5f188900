"""Flamingo's gated cross-attention into a frozen Particle Transformer: exactly the frozen model at
initialisation, frozen parameters bit-identical after training, jets without media keep the frozen output,
and the media's order and padding do not matter."""
import pytest
import torch
from torch.nn import functional as F

from backbones.gated_cross_attention import GatedModel
from hep.jets import SAMPLE_DIR
from hep.jets.inputs import load_jets
from hep.jets.models import ParticleTransformer

MEDIA_DIM = 5


@pytest.fixture(scope="module")
def jets():
    return load_jets(sorted(SAMPLE_DIR.glob("jets_*.root"))[:1], limit=48).trimmed()


def trained_part(jets):
    """A ParT after a few optimiser steps (non-trivial weights and batch statistics)."""
    torch.manual_seed(0)
    model = ParticleTransformer(dropout=0.1)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        optimiser.zero_grad()
        F.cross_entropy(model(jets), jets.label).backward()
        optimiser.step()
    return model.eval()


def media_for(jets, seed=0, tokens=6):
    """Per-jet media tokens (a stand-in for secondary vertices): the signal jets get displaced ones."""
    g = torch.Generator().manual_seed(seed)
    media = torch.randn(len(jets), tokens, MEDIA_DIM, generator=g)
    media[:, :, 0] += 2.0 * jets.label[:, None]
    mask = torch.rand(len(jets), tokens, generator=g) < 0.7
    mask[:, 0] = True
    return media, mask


def test_at_initialisation_the_gated_model_is_the_frozen_model(jets):
    base = trained_part(jets)
    with torch.no_grad():
        expected = base(jets)
    gated = GatedModel(base, MEDIA_DIM, every=2).eval()
    media, mask = media_for(jets)
    with torch.no_grad():
        assert torch.equal(gated(jets, media=media, media_mask=mask), expected)
    assert all(not p.requires_grad for name, p in gated.named_parameters() if ".frozen." in name or
               not name.startswith("gates."))
    assert len(gated.gates.gated) == 2  # after blocks 1 and 3 of 4


def test_training_moves_only_the_new_layers_and_jets_without_media_keep_the_frozen_output(jets):
    base = trained_part(jets)
    frozen = [(t, t.detach().clone()) for t in (*base.parameters(), *base.buffers())]  # batch statistics too
    with torch.no_grad():
        expected = base(jets)
    gated = GatedModel(base, MEDIA_DIM, every=1)
    trainable = [p for p in gated.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(trainable, lr=3e-3)
    media, mask = media_for(jets)
    gated.train()
    for _ in range(5):
        optimiser.zero_grad()
        F.cross_entropy(gated(jets, media=media, media_mask=mask), jets.label).backward()
        optimiser.step()
    gated.eval()
    assert all(torch.equal(tensor, before) for tensor, before in frozen)  # bit-identical
    assert all(float(g.attn_gate) != 0 and float(g.ff_gate) != 0 for g in gated.gates.gated.values())
    with torch.no_grad():
        assert not torch.allclose(gated(jets, media=media, media_mask=mask), expected)
        none = torch.zeros_like(mask)
        assert torch.equal(gated(jets, media=media, media_mask=none), expected)
        some = mask.clone()
        some[::2] = False  # every other jet without media: exactly the frozen output there
        out = gated(jets, media=media, media_mask=some)
        assert torch.equal(out[::2], expected[::2]) and not torch.allclose(out[1::2], expected[1::2])


def test_media_order_and_padding_do_not_matter(jets):
    gated = GatedModel(trained_part(jets), MEDIA_DIM, every=2)
    for g in gated.gates.gated.values():  # open the gates so the media matter
        torch.nn.init.constant_(g.attn_gate, 0.7)
        torch.nn.init.constant_(g.ff_gate, 0.3)
    gated.eval()
    media, mask = media_for(jets)
    with torch.no_grad():
        out = gated(jets, media=media, media_mask=mask)
        perm = torch.randperm(media.shape[1], generator=torch.Generator().manual_seed(1))
        assert torch.allclose(gated(jets, media=media[:, perm], media_mask=mask[:, perm]), out, atol=1e-5)
        garbage = media.masked_fill(~mask[..., None], 1e3)
        assert torch.allclose(gated(jets, media=garbage, media_mask=mask), out, atol=1e-5)


def test_bad_use_is_refused(jets):
    base = trained_part(jets)
    with pytest.raises(ValueError, match="every"):
        GatedModel(base, MEDIA_DIM, every=5)
    gated = GatedModel(trained_part(jets), MEDIA_DIM)
    with pytest.raises(RuntimeError, match="media"):
        gated.base(jets)
    with pytest.raises(ValueError, match="exactly one"):
        GatedModel(torch.nn.Linear(3, 3), MEDIA_DIM)
