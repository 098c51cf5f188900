"""The vertex tagger (ParT + Flamingo's gated cross-attention to tracks and vertices): the frozen tagger's
output at initialisation, frozen weights untouched by training, order and padding invariance, clear errors,
and the commands end to end on generated jets with vertices."""
import json

import pytest
import torch

from hep.jets.inputs import JetBatch
from hep.jets.models import ParticleTransformer, VertexTagger
from tests.hep.jets.test_models import write_jets


def with_media(jets: JetBatch, seed: int = 0) -> JetBatch:
    """``jets`` with random impact parameters (charge 0 for a third of the particles) and 0-3 vertices each."""
    g = torch.Generator().manual_seed(seed)
    b, length = jets.mask.shape
    tracks = torch.randn(b, 6, length, generator=g)
    tracks[:, 0] = torch.randint(-1, 2, (b, length), generator=g).float()
    tracks = tracks.masked_fill(~jets.mask[:, None, :], 0)
    vertex_mask = torch.arange(8)[None, :] < torch.randint(0, 4, (b, 1), generator=g)
    vertices = torch.randn(b, 7, 8, generator=g).masked_fill(~vertex_mask[:, None, :], 0)
    return JetBatch(jets.points, jets.features, jets.vectors, jets.mask, jets.label, tracks, vertices, vertex_mask)


@pytest.fixture
def jets(tmp_path):
    from hep.jets.inputs import load_jets

    return with_media(load_jets(write_jets(tmp_path / "j.root", n=12)))


def trained_part(jets: JetBatch) -> ParticleTransformer:
    torch.manual_seed(0)
    part = ParticleTransformer()
    optimiser = torch.optim.Adam(part.parameters(), 1e-3)
    for _ in range(3):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(part(jets), jets.label).backward()
        optimiser.step()
    return part.eval()


def test_part_flamingo_starts_as_its_frozen_tagger_and_leaves_it_untouched(jets):
    base = trained_part(jets)
    with torch.no_grad():
        expected = base(jets)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    model = VertexTagger(base).train()
    with torch.no_grad():
        assert torch.equal(model(jets), expected)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], 1e-2)
    for _ in range(4):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(jets), jets.label).backward()
        optimiser.step()
    after = model.gated.base.state_dict()
    frozen = {k.replace("encoder.frozen.", "encoder."): v for k, v in after.items() if "encoder.gated" not in k
              and "encoder.media_in" not in k and "encoder.resampler" not in k}
    assert frozen.keys() == before.keys() and all(torch.equal(frozen[k], before[k]) for k in before)
    gates = [layer.attn_gate for layer in model.gated.gates.gated.values()]
    assert all(float(g.detach().abs()) > 0 for g in gates)
    with torch.no_grad():
        assert not torch.allclose(model.eval()(jets), expected)


def test_part_flamingo_scratch_trains_every_weight(jets):
    torch.manual_seed(0)
    model = VertexTagger(ParticleTransformer(), freeze=False).train()
    assert all(p.requires_grad for p in model.parameters())
    before = next(model.gated.base.embed.parameters()).clone()
    optimiser = torch.optim.Adam(model.parameters(), 1e-2)
    optimiser.zero_grad()
    torch.nn.functional.cross_entropy(model(jets), jets.label).backward()
    optimiser.step()
    assert not torch.equal(next(model.gated.base.embed.parameters()), before)


def test_vertex_tagger_ignores_the_order_of_particles_and_vertices_and_padding(jets):
    torch.manual_seed(0)
    model = VertexTagger(ParticleTransformer(), freeze=False).double().eval()
    double = lambda j: JetBatch(*(t.double() if t.is_floating_point() else t for t in  # noqa: E731
                                  (j.points, j.features, j.vectors, j.mask, j.label, j.tracks, j.vertices,
                                   j.vertex_mask)))
    with torch.no_grad():
        for gate in model.gated.gates.gated.values():  # open the gates, so the media count
            gate.attn_gate.fill_(0.7)
            gate.ff_gate.fill_(0.7)
        out = model(double(jets))
        # particles permuted (their tracks with them), vertices reversed within each jet, vertex padding garbage
        g = torch.Generator().manual_seed(1)
        idx = torch.stack([torch.cat([torch.randperm(int(m.sum()), generator=g), torch.arange(int(m.sum()), len(m))])
                           for m in jets.mask])
        take = lambda t: torch.gather(t, 2, idx[:, None, :].expand_as(t))  # noqa: E731
        n = jets.vertex_mask.sum(1)
        vidx = torch.stack([torch.cat([torch.arange(int(k) - 1, -1, -1), torch.arange(int(k), 8)]) for k in n])
        vertices = torch.gather(jets.vertices, 2, vidx[:, None, :].expand_as(jets.vertices))
        permuted = JetBatch(take(jets.points), take(jets.features), take(jets.vectors), jets.mask, jets.label,
                            take(jets.tracks), vertices.masked_fill(~jets.vertex_mask[:, None, :], 5.0),
                            jets.vertex_mask)
        assert torch.allclose(out, model(double(permuted)), atol=1e-8)
        assert not torch.allclose(out, model(double(with_media(jets, seed=2))), atol=1e-3)  # the media count


def test_vertex_tagger_without_tracks_says_which_config_to_use(jets):
    model = VertexTagger(ParticleTransformer()).eval()
    plain = JetBatch(jets.points, jets.features, jets.vectors, jets.mask, jets.label)
    with pytest.raises(ValueError, match="vertices.yaml"):
        model(plain)


@pytest.mark.slow
def test_flamingo_commands_on_generated_jets_with_vertices(tmp_path):
    pytest.importorskip("pythia8mc")
    from physml.cli import main
    from training.checkpoint import load_checkpoint
    from training.report import read_report

    data = tmp_path / "jets"
    assert main(["data", "generate", "jets", "--out", str(data), "--jets", "240", "--chunk", "120",
                 "--no-progress"]) == 0
    common = ["--data", str(data), "--steps", "6", "--batch-size", "32", "--no-progress"]
    assert main(["hep", "train-jets", "--model", "part", "--run-dir", str(tmp_path / "part"), *common]) == 0
    assert main(["hep", "train-jets", "--model", "part-flamingo", "--base", str(tmp_path / "part"),
                 "--run-dir", str(tmp_path / "flamingo"), *common]) == 0
    assert main(["hep", "train-jets", "--model", "part-flamingo-scratch", "--run-dir", str(tmp_path / "scratch"),
                 *common]) == 0
    base = load_checkpoint(next((tmp_path / "part" / "checkpoints").glob("best.pt")))["model"]
    extended = load_checkpoint(next((tmp_path / "flamingo" / "checkpoints").glob("best.pt")))["model"]
    renamed = {k.replace("gated.base.", "").replace("encoder.frozen.", "encoder."): v for k, v in extended.items()}
    assert all(torch.equal(renamed[k], v) for k, v in base.items())  # the frozen tagger, bit for bit
    out = tmp_path / "eval"
    assert main(["hep", "evaluate-jets", *(str(tmp_path / m) for m in ("part", "flamingo", "scratch")),
                 "--out", str(out)]) == 0
    assert [r.key for r in read_report(out).rows][:3] == ["part", "flamingo", "scratch"]
    assert main(["hep", "tag", str(data / "jets_0000.root"), "--model", str(tmp_path / "flamingo"),
                 "--out", str(tmp_path / "scores.root")]) == 0
    assert json.loads((tmp_path / "flamingo" / "config.json").read_text())["run"]["base"] == str(tmp_path / "part")
    assert main(["hep", "train-jets", "--model", "part-flamingo", "--run-dir", str(tmp_path / "nobase"),
                 *common]) == 2  # no --base: a clear error
