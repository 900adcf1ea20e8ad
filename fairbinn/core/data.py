"""Batches, in-memory splits and the checks run on them before training.

A batch is ``(inputs, y, s, mask)``: ``inputs`` is whatever the encoder
takes (the trainer never looks inside), ``y`` the 0/1 labels ``(n,)``, ``s``
the integer group of each example ``(n,)`` and ``mask`` an optional boolean
``(n,)`` selecting the examples that count (e.g. a graph's training nodes),
or an integer index tensor of the examples that count, repeats allowed (a
sampler drawing nodes with replacement). An optional fifth field,
``fairness_mask``, selects the examples of the fairness loss when they are
not the same (a graph's every node for demographic parity, which needs no
labels); without it the fairness loss covers ``mask``'s. An optional sixth
field, ``weight``, holds non-negative float weights ``(n,)`` of the
examples: the BCE becomes ``sum(w_i * bce_i) / sum(w_i)`` over the examples
that count (the fairness loss stays unweighted); without it every example
weighs the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "Batch",
    "as_batch",
    "move_to",
    "Split",
    "TensorLoader",
    "TrainingSampler",
    "UniformConfig",
    "UniformSampler",
    "check_targets",
    "check_weights",
    "rows_of",
]


class Batch(NamedTuple):
    """One training or evaluation batch; see the module docstring."""

    inputs: Any
    y: Tensor
    s: Tensor
    mask: Tensor | None = None
    fairness_mask: Tensor | None = None
    weight: Tensor | None = None

    def selected(self, values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(values, y, s)`` restricted to the masked examples (all if no mask)."""
        if self.mask is None:
            return values, self.y, self.s
        return values[self.mask], self.y[self.mask], self.s[self.mask]

    def selected_weight(self) -> Tensor | None:
        """The ``weight`` of the masked examples (all if no mask), in the order of :meth:`selected`; None
        without weights."""
        if self.weight is None or self.mask is None:
            return self.weight
        return self.weight[self.mask]

    def fairness_selected(self, values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(values, y, s)`` of the examples the fairness loss covers: ``fairness_mask``'s when given (for
        example every node of a graph whose group is known, for a constraint that needs no labels), else
        the same as :meth:`selected`."""
        if self.fairness_mask is None:
            return self.selected(values)
        return values[self.fairness_mask], self.y[self.fairness_mask], self.s[self.fairness_mask]


def as_batch(item: Any) -> Batch:
    """Accept a :class:`Batch` or a tuple ``(inputs, y, s)`` / ``(inputs, y, s, mask)``."""
    if isinstance(item, Batch):
        return item
    if isinstance(item, (tuple, list)) and len(item) in (3, 4):
        return Batch(*item)
    raise TypeError(
        "a batch must be a fairbinn.core.Batch or a tuple (inputs, y, s[, mask]); "
        f"got {type(item).__name__}"
        + (f" of length {len(item)}" if isinstance(item, (tuple, list)) else "")
    )


def move_to(obj: Any, device: torch.device) -> Any:
    """Move tensors (and objects with ``.to``, such as PyG ``Data``) in nested tuples/lists/dicts."""
    if isinstance(obj, Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, Batch):
        return Batch(*(move_to(v, device) for v in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(move_to(v, device) for v in obj)
    if isinstance(obj, dict):
        return {k: move_to(v, device) for k, v in obj.items()}
    if hasattr(obj, "to"):
        return obj.to(device)
    return obj


def check_targets(y: Tensor, s: Tensor, *, name: str = "data", min_groups: int = 1) -> None:
    """Raise ``ValueError`` unless ``y`` is binary 0/1 and ``s`` holds integer groups >= 0.

    ``min_groups`` is the number of distinct groups ``s`` must contain.
    """
    if y.dim() != 1 or s.dim() != 1:
        raise ValueError(f"{name}: labels and groups must be 1-D, got shapes {tuple(y.shape)} and {tuple(s.shape)}")
    if y.numel() != s.numel():
        raise ValueError(f"{name}: {y.numel()} labels but {s.numel()} group values")
    if y.numel() == 0:
        raise ValueError(f"{name} is empty")
    labels = torch.unique(y)
    if not torch.isin(labels, torch.tensor([0, 1], dtype=labels.dtype, device=labels.device)).all():
        raise ValueError(
            f"{name}: labels must be binary 0/1, found values {labels[:6].tolist()}; "
            "binarise the target first (e.g. y = (target > threshold))"
        )
    if s.is_floating_point() or s.dtype == torch.bool or s.is_complex():
        raise ValueError(f"{name}: groups must be an integer tensor, got {s.dtype}")
    if int(s.min()) < 0:
        raise ValueError(f"{name}: group indices must be >= 0, found {int(s.min())}")
    n_groups = int(torch.unique(s).numel())
    if n_groups < min_groups:
        raise ValueError(
            f"{name}: the sensitive attribute has {n_groups} distinct group(s); "
            f"fairness needs at least {min_groups}"
        )


def check_weights(w: Tensor, n: int, *, name: str = "sample weights", rows: str = "rows") -> None:
    """Raise ``ValueError`` unless ``w`` holds ``n`` finite weights ``>= 0``, not all zero, in a 1-D float
    tensor. ``name`` starts the messages, ``rows`` names what is weighed (e.g. ``"rows in X"``)."""
    if not isinstance(w, Tensor) or not w.is_floating_point():
        raise ValueError(f"{name}: weights must be a float tensor, got {getattr(w, 'dtype', type(w).__name__)}")
    if w.dim() != 1:
        raise ValueError(f"{name}: weights must be 1-D (one per row), got shape {tuple(w.shape)}")
    if w.numel() != n:
        raise ValueError(f"{name}: {w.numel()} weights for {n} {rows}")
    finite = torch.isfinite(w)
    if not finite.all():
        row = int((~finite).nonzero()[0, 0])
        raise ValueError(f"{name}: NaN or infinite weight at row {row} ({float(w[row])}); "
                         f"{int((~finite).sum())} of {n} weights are not finite")
    if (w < 0).any():
        row = int((w < 0).nonzero()[0, 0])
        raise ValueError(f"{name}: weights must be >= 0, found {float(w[row]):g} at row {row}")
    if n and not (w > 0).any():
        raise ValueError(f"{name}: every weight is zero; at least one must be positive")


def _numeric(values: Any, name: str) -> np.ndarray:
    """``values`` as a numeric numpy array; a ``ValueError`` naming ``name`` otherwise."""
    array = np.asarray(values)
    if array.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    return array


@dataclass(frozen=True)
class Split:
    """An in-memory split of a tabular-style dataset.

    Attributes
    ----------
    x : Tensor, shape (n, d), float32
        Features; must be finite.
    y : Tensor, shape (n,), float32
        0/1 labels.
    s : Tensor, shape (n,), int64
        Group index of each row, in ``[0, num_groups)``.
    name : str
        Used in error messages ("train", "val", "test").
    w : Tensor, shape (n,), float32, optional
        Sample weights of the rows for the training BCE (see :class:`Batch`);
        finite, ``>= 0``, not all zero. None (the default): equal weights.
        Only :meth:`~fairbinn.core.trainer.Trainer.fit` with the uniform
        sampler uses them; evaluation and epoch selection are unweighted.

    Construction validates shapes, finiteness, binary labels and weights.
    """

    x: Tensor
    y: Tensor
    s: Tensor
    name: str = field(default="data", compare=False)
    w: Tensor | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.x.dim() != 2:
            raise ValueError(f"{self.name}: features must be 2-D (n, d), got shape {tuple(self.x.shape)}")
        if not (len(self.x) == len(self.y) == len(self.s)):
            raise ValueError(
                f"{self.name}: mismatched lengths: {len(self.x)} feature rows, "
                f"{len(self.y)} labels, {len(self.s)} sensitive values"
            )
        if self.x.is_floating_point() and not torch.isfinite(self.x).all():
            bad = (~torch.isfinite(self.x)).nonzero()[0].tolist()
            raise ValueError(
                f"{self.name}: features contain NaN or infinite values (first at row {bad[0]}, column {bad[1]})"
            )
        check_targets(self.y, self.s, name=self.name)
        if self.w is not None:
            check_weights(self.w, len(self.y), name=f"{self.name} sample weights")

    @classmethod
    def from_arrays(cls, x: Any, y: Any, s: Any, name: str = "data", w: Any = None) -> "Split":
        """Build from numpy arrays / sequences, casting to float32, float32 and int64 (``w``, optional
        sample weights, to float32)."""
        x_arr, y_arr, s_arr = np.asarray(x), np.asarray(y), np.asarray(s)
        if s_arr.dtype.kind not in "iub":
            raise ValueError(
                f"{name}: sensitive values must be integer group indices, got dtype {s_arr.dtype}; "
                "encode labels first, e.g. np.unique(s, return_inverse=True)"
            )
        if x_arr.dtype.kind not in "fiub":
            raise ValueError(f"{name}: features must be numeric, got dtype {x_arr.dtype}")
        return cls(
            torch.as_tensor(x_arr, dtype=torch.float32),
            torch.as_tensor(y_arr, dtype=torch.float32),
            torch.as_tensor(s_arr, dtype=torch.int64),
            name=name,
            w=None if w is None else torch.from_numpy(np.array(_numeric(w, f"{name} sample weights"),
                                                               dtype=np.float32)),
        )

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_features(self) -> int:
        return self.x.shape[1]

    def targets(self) -> tuple[Tensor, Tensor]:
        """``(y, s)`` of the whole split, used for checks before training."""
        return self.y, self.s

    def loader(self, batch_size: int, shuffle: bool = False, seed: int | None = None) -> "TensorLoader":
        """An iterable of :class:`Batch` over this split; see :class:`TensorLoader`."""
        return TensorLoader(self, batch_size=batch_size, shuffle=shuffle, seed=seed)


class TensorLoader:
    """Minibatches of a :class:`Split` by slicing, without per-example collation.

    Each iteration is one epoch; with ``shuffle=True`` every iteration draws a
    fresh permutation from a generator seeded with ``seed``, so two iterators
    taken at once (the bilevel strategy's separate batches) see different
    orders, and a run is reproducible. The last batch may be smaller. The
    split's sample weights ``w``, when it has them, become each batch's
    ``weight``.
    """

    def __init__(self, split: Split, batch_size: int, shuffle: bool = False, seed: int | None = None):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.split = split
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = torch.Generator()
        self.generator.manual_seed(0 if seed is None else seed)

    def __len__(self) -> int:
        return -(-len(self.split) // self.batch_size)

    def state_dict(self) -> dict[str, Tensor]:
        """The shuffling generator's state, so a resumed run draws the same orders."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["generator"])

    def targets(self) -> tuple[Tensor, Tensor]:
        return self.split.targets()

    def __iter__(self) -> Iterator[Batch]:
        split, n = self.split, len(self.split)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                rows: slice | Tensor = slice(start, start + self.batch_size)
            else:
                rows = order[start : start + self.batch_size]
            if split.w is None:
                yield Batch(split.x[rows], split.y[rows], split.s[rows])
            else:
                yield Batch(split.x[rows], split.y[rows], split.s[rows], weight=split.w[rows])



@runtime_checkable
class TrainingSampler(Protocol):
    """What :meth:`~fairbinn.core.trainer.Trainer.fit` draws training batches from, built by ``TrainConfig.sampler``.

    ``bind(model)`` is called once before training; an iteration is one
    epoch of batches; ``targets()`` gives the training labels and groups to
    check (None: unknown); ``epoch_record()`` columns for each epoch's
    history; ``state_dict()`` (None: nothing to keep) goes into checkpoints
    and back through ``load_state_dict`` on resume. Training data that is
    one already (a :class:`~fairbinn.core.drfairness.DrFairnessSampler`) is
    used as it is.
    """

    def bind(self, model: Any) -> None: ...
    def __iter__(self) -> Iterator[Any]: ...
    def targets(self) -> tuple[Tensor, Tensor] | None: ...
    def epoch_record(self) -> dict[str, float]: ...
    def state_dict(self) -> dict[str, Any] | None: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class UniformSampler:
    """The :class:`TrainingSampler` of ``sampler="uniform"``: a loader's batches as they come (a Split's
    shuffled passes), with the loader's ``targets()`` and ``state_dict()`` when it has them (as
    :class:`TensorLoader` does)."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def bind(self, model: Any) -> None:
        pass

    def __iter__(self) -> Iterator[Any]:
        return iter(self.loader)

    def targets(self) -> tuple[Tensor, Tensor] | None:
        return self.loader.targets() if hasattr(self.loader, "targets") else None

    def epoch_record(self) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any] | None:
        resumable = hasattr(self.loader, "state_dict") and hasattr(self.loader, "load_state_dict")
        return self.loader.state_dict() if resumable else None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loader.load_state_dict(state)


@dataclass(frozen=True)
class UniformConfig:
    """``TrainConfig(sampler="uniform")``: shuffled passes over the training data; no settings."""

    name: ClassVar[str] = "uniform"
    adaptive: ClassVar[bool] = False  # the draws do not depend on the model

    def settings(self) -> dict[str, Any]:
        return {}

    def build(self, train: Any, val: Any, generated: Any = None, *, batch_size: int, seed: int) -> UniformSampler:
        if generated is not None:
            raise ValueError("generated data is only used by sampler='drfairness'; the uniform sampler would ignore it")
        if isinstance(train, TrainingSampler):
            return train
        return UniformSampler(train.loader(batch_size, shuffle=True, seed=seed) if isinstance(train, Split) else train)


def rows_of(data: Any) -> Any:
    """What a sampler draws rows from: a Split or full graph as given, a ``DataLoader``'s dataset."""
    dataset = getattr(data, "dataset", None)
    return dataset if dataset is not None and hasattr(dataset, "targets") else data
