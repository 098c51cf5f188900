"""``physml generalist train``: one decoder over a balanced mixture of tasks' token sequences; with a single
task (``--tasks jets``) it is that task's specialist of exactly the same size (same vocabulary, same network).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from backbones.tokenise import Packed, Tokenizer, sequence_loss
from generalist.model import Decoder
from generalist.tasks import TASKS, Examples, Task
from training import TrainerConfig
from training.mixture import Mixture, TaskBatches, collate_by_task
from training.recipe import Built, Recipe

TOKENIZER = Tokenizer(tasks=tuple(TASKS))
VALID_EXAMPLES = 256  # per task, scored during training


@dataclass
class GeneralistRun:
    """A generalist (several tasks) or a specialist (one); defaults are the reference run of docs/generalist.md."""

    tasks: tuple[str, ...] = ("jets", "disks", "radar")  # what it learns (one task: a specialist)
    jets_data: str = "runs/data/jets"           # physml data generate jets
    disks_data: str = "runs/data/soft_disks12"  # physml data generate soft_disks --particles 12
    radar_data: str = "runs/data/radar"         # physml data generate radar
    examples: int | None = 20000                # training examples per task at most (None: all)
    dim: int = 128                              # transformer width
    depth: int = 4                              # transformer blocks
    heads: int = 4                              # attention heads
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        run_dir="runs/generalist", steps=1500, batch_size=64, lr=1e-3, schedule="cosine", lr_final=1e-5,
        warmup_steps=100, select_by="loss", log_every=20))


def data_dir(run: GeneralistRun, task: str) -> str:
    return getattr(run, f"{task}_data")


def check_tasks(tasks: tuple[str, ...]) -> list[Task]:
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks or len(set(tasks)) != len(tasks):
        raise ValueError(f"--tasks takes distinct names among {', '.join(TASKS)}; got {', '.join(tasks) or 'none'}")
    return [TASKS[t] for t in tasks]


def pack(task: Task, examples: Examples) -> Packed:
    """The examples of one task as ``[task] inputs [separator] targets`` token rows."""
    inputs = TOKENIZER.encode(torch.from_numpy(examples.inputs))
    targets = torch.from_numpy(examples.targets)
    targets = TOKENIZER.encode_discrete(targets) if task.discrete else TOKENIZER.encode(targets)
    return TOKENIZER.pack(task.name, inputs, targets)


def rows(packed: Packed) -> list[Packed]:
    """One-row views of ``packed``: the examples of one task, for :class:`training.mixture.Mixture`."""
    return [packed[i:i + 1] for i in range(len(packed))]


def collate(items: list[Packed]) -> TaskBatches:
    """Rows grouped by their task token, each group padded only to its own rows' length (a radar row is 258
    tokens, a jet's 51: one padded batch would spend most of its compute on padding)."""
    return collate_by_task(items, _task_token, TOKENIZER.collate)


def _task_token(row: Packed) -> int:
    return int(row.tokens[0, 0])


def loss_fn(model: Decoder, batch: TaskBatches) -> tuple[torch.Tensor, dict]:
    """Each example's mean cross-entropy over its target tokens, averaged over examples: a jet's one label
    token weighs as much as a radar frame's 64 (a mean over all target tokens would train radar almost alone)."""
    total = sum(len(g) * sequence_loss(model(g), g) for g in batch.groups)
    return total / len(batch), {}


def build_model(run: GeneralistRun) -> Decoder:
    check_tasks(run.tasks)
    return Decoder(TOKENIZER.vocab, dim=run.dim, depth=run.depth, heads=run.heads, mlp_dim=4 * run.dim)


def build(run: GeneralistRun) -> Built:
    tasks = check_tasks(run.tasks)
    seed = run.trainer.seed
    train = [pack(t, t.examples(data_dir(run, t.name), "train", run.examples, seed)) for t in tasks]
    valid = [pack(t, t.examples(data_dir(run, t.name), "valid", VALID_EXAMPLES, seed)) for t in tasks]
    return Built(build_model(run), Mixture([rows(p) for p in train]), [r for p in valid for r in rows(p)], collate,
                 loss_fn)


@torch.no_grad()
def predict(model: Decoder, task: Task, examples: Examples, batch_size: int = 256) -> np.ndarray:
    """The model's answers for ``examples``: p(class 1) for a discrete task (the two label tokens'
    probabilities renormalised), else target values decoded greedily token by token (the most likely bin
    given the inputs and the bins chosen before it)."""
    model.eval()
    out = []
    for start in range(0, len(examples.inputs), batch_size):
        rows = Examples(examples.inputs[start:start + batch_size], examples.targets[start:start + batch_size], {}, {})
        placeholder = np.zeros_like(rows.targets)
        packed = pack(task, Examples(rows.inputs, placeholder, {}, {}))
        m = rows.targets.shape[1]
        if task.discrete:
            logits = model(packed)[:, -m - 1, :TOKENIZER.discrete]
            out.append(torch.softmax(logits.double(), -1)[:, 1].numpy())
            continue
        tokens = packed.tokens.clone()
        for j in range(m):
            logits = model(Packed(tokens, packed.loss_mask, packed.positions))[:, -m - 1 + j]
            bins = logits[:, TOKENIZER.discrete:TOKENIZER.discrete + TOKENIZER.bins]
            tokens[:, -m + j] = bins.argmax(-1) + TOKENIZER.discrete
        out.append(TOKENIZER.decode(tokens[:, -m:]).double().numpy())
    return np.concatenate(out)


RECIPE = Recipe("generalist", "a Gato-style decoder over tokenised jets, particles and radar (or one task: a "
                "specialist)", GeneralistRun, build, build_model)
