"""Inference of sparse-trained taggers (training/sparsity.py): dense kernels against torch's sparse CSR ones.

For each ``physml hep train-jets`` run folder: the zero fraction of its Linear weights, the forward FLOPs per
jet (dense, and with zero weights skipped: ``training.sparsity.forward_flops``), and the time to score the
sample jets
    dense:  the trained model as it is (zeros multiplied like any weight)
    csr:    every Linear with at least half its weights zero computing x W^T as a CSR sparse-dense product
            (``torch.sparse.addmm``; MKL's sparse BLAS where torch has it), outputs checked equal
Prints, per run:

    sparse_inference RUN: sparsity S, MFLOP/jet dense D effective E, dense X ms, csr Y ms (dense/csr)

Usage: python benchmarks/sparse_inference.py RUN_DIR [RUN_DIR ...] [--jets 2048] [--batch-size 512]
"""
from __future__ import annotations

import argparse
import copy

import torch
from torch import nn

from timing import best_of  # benchmarks/timing.py
from hep.jets import SAMPLE_DIR
from hep.jets.inputs import load_jets
from hep.jets.train import RECIPE, jet_files
from training.recipe import load
from training.sparsity import forward_flops


class CSRLinear(nn.Module):
    """``nn.Linear`` with its weight stored as a CSR sparse matrix: y = (W x^T)^T + b for any leading shape."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.weight = linear.weight.detach().to_sparse_csr()
        self.bias = linear.bias.detach() if linear.bias is not None else None
        self.out_features = linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1]).T
        out = torch.sparse.mm(self.weight, rows) if self.bias is None else \
            torch.sparse.addmm(self.bias[:, None].expand(-1, rows.shape[1]), self.weight, rows)
        return out.T.reshape(*x.shape[:-1], self.out_features)


def with_csr_kernels(model: nn.Module, min_zeros: float = 0.5) -> tuple[nn.Module, int]:
    """A copy of ``model`` whose Linear layers with at least ``min_zeros`` zero weights are CSR; and how many."""
    model = copy.deepcopy(model)
    swapped = 0
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and float((child.weight == 0).float().mean()) >= min_zeros:
                setattr(module, child_name, CSRLinear(child))
                swapped += 1
    return model, swapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="train-jets run folders")
    parser.add_argument("--jets", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    jets = load_jets(jet_files(SAMPLE_DIR), limit=args.jets)
    batches = [jets[i: i + args.batch_size] for i in range(0, len(jets), args.batch_size)]
    print(f"sparse_inference: {len(jets)} jets in batches of {args.batch_size}, {torch.get_num_threads()} threads")
    for run_dir in args.runs:
        model, _ = load(run_dir, [RECIPE])
        linear = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
        sparsity = sum(int((w == 0).sum()) for w in linear) / sum(w.numel() for w in linear)
        dense_flops, effective = forward_flops(model, batches[0])
        sparse_model, swapped = with_csr_kernels(model)
        with torch.inference_mode():
            reference = torch.cat([model(b) for b in batches])
            check = torch.cat([sparse_model(b) for b in batches])
            if not torch.allclose(reference, check, rtol=1e-4, atol=1e-5):
                raise AssertionError(f"{run_dir}: CSR outputs differ by {(reference - check).abs().max():.2e}")
            dense = best_of(lambda: [model(b) for b in batches], args.repeats)
            csr = best_of(lambda: [sparse_model(b) for b in batches], args.repeats)
        per_jet = len(batches[0])
        print(f"sparse_inference {run_dir}: Linear sparsity {sparsity:.3f} ({swapped} layers CSR), MFLOP/jet dense "
              f"{dense_flops / per_jet / 1e6:.2f} effective {effective / per_jet / 1e6:.2f}, dense "
              f"{dense * 1e3:.1f} ms, csr {csr * 1e3:.1f} ms ({dense / csr:.2f}x)")


if __name__ == "__main__":
    main()
