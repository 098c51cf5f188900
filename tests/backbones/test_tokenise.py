"""Gato's tokenisation: round trips within the bin width, Gato's published mu-law, sequence layout, and a
loss that only the target tokens feed."""
import math

import pytest
import torch

from backbones.tokenise import Tokenizer, inverse_mu_law, mu_law, sequence_loss


def test_mu_law_is_gatos_and_inverts():
    x = torch.tensor([0.0, 1.0, -1.0, 256.0, -256.0, 0.01], dtype=torch.float64)
    expected = torch.tensor([0.0, math.log(101) / math.log(25601), -math.log(101) / math.log(25601), 1.0, -1.0,
                             math.log(2) / math.log(25601)], dtype=torch.float64)
    torch.testing.assert_close(mu_law(x), expected)
    y = torch.linspace(-1, 1, 1001, dtype=torch.float64)
    torch.testing.assert_close(mu_law(inverse_mu_law(y)), y)


def test_tokens_round_trip_within_half_a_bin():
    tok = Tokenizer(tasks=("a",))
    x = torch.cat([torch.linspace(-256, 256, 100_001), torch.randn(10_000, generator=torch.Generator().manual_seed(0))])
    tokens = tok.encode(x)
    assert tokens.min() >= tok.discrete and tokens.max() < tok.discrete + tok.bins
    back = tok.decode(tokens)
    assert (mu_law(back) - mu_law(x)).abs().max() <= 1.0 / tok.bins + 1e-6  # half of a 2/1024-wide bin
    # relative error ln(1 + M mu) / bins (1 + 1 / (mu |x|)) = 1.0% at |x| = 0.5; absolute 1e-4 at 0
    large = x.abs() > 0.5
    assert ((back - x).abs() / x.abs())[large].max() < math.log1p(25600) / 1024 * 1.021
    assert (back - x)[x.abs() < 1e-3].abs().max() < 1.1e-4
    # beyond +-M the values clip to the extreme bins; every bin's centre encodes to itself
    assert tok.encode(torch.tensor([1e4, -1e4])).tolist() == [tok.discrete + tok.bins - 1, tok.discrete]
    centres = torch.arange(tok.discrete, tok.discrete + tok.bins)
    assert torch.equal(tok.encode(tok.decode(centres)), centres)


def test_packed_sequences_keep_tasks_apart_and_mark_only_targets():
    tok = Tokenizer(tasks=("jets", "particles"))
    inputs, targets = tok.encode(torch.randn(3, 5)), tok.encode_discrete(torch.tensor([[0], [1], [1]]))
    packed = tok.pack("jets", inputs, targets)
    assert packed.tokens.shape == (3, 8)
    assert (packed.tokens[:, 0] == tok.task_token("jets")).all() and (packed.tokens[:, 6] == tok.separator).all()
    assert packed.loss_mask.tolist() == [[False] * 7 + [True]] * 3
    assert packed.positions[0].tolist() == [0, 0, 1, 2, 3, 4, 0, 0]
    other = tok.pack("particles", tok.encode(torch.randn(2, 2)), tok.encode(torch.randn(2, 3)))
    batch = tok.collate([packed, other])
    assert batch.tokens.shape == (5, 8) and (batch.tokens[3:, 7] == tok.padding).all()
    assert batch.loss_mask.sum().item() == 3 + 2 * 3 and not batch.loss_mask[batch.tokens == tok.padding].any()
    assert len({tok.task_token("jets"), tok.task_token("particles"), tok.separator, tok.padding}) == 4
    assert tok.vocab == tok.padding + 1
    with pytest.raises(ValueError, match="unknown task 'tracks'"):
        tok.pack("tracks", inputs, targets)
    with pytest.raises(ValueError, match="discrete values must lie in"):
        tok.encode_discrete(torch.tensor([2]))


def test_the_loss_sees_only_target_tokens():
    tok = Tokenizer(tasks=("jets",))
    packed = tok.pack("jets", tok.encode(torch.randn(4, 6)), tok.encode(torch.randn(4, 2)))
    logits = torch.randn(4, packed.tokens.shape[1], tok.vocab, requires_grad=True)
    sequence_loss(logits, packed).backward()
    touched = logits.grad.abs().sum(-1) > 0
    # position t predicts token t + 1: the last input token and the separator predict the two targets
    assert touched.tolist() == [[False] * 7 + [True, True, False]] * 4
    # the loss is the mean cross-entropy of those predictions
    expected = torch.nn.functional.cross_entropy(logits[:, 7:9].reshape(-1, tok.vocab),
                                                 packed.tokens[:, 8:].reshape(-1))
    torch.testing.assert_close(sequence_loss(logits, packed), expected)
