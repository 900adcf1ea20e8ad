"""Accuracy-vs-unfairness plots of a sweep (matplotlib; ``pip install matplotlib``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .core.pareto import DP_BUDGETS, accuracy_at_budgets, pareto_front

__all__ = ["plot_fronts", "plot_history", "plot_ratios", "read_reference_points", "save_figure"]

_COLORS = {"bilevel": "tab:blue", "lagrangian": "tab:orange", "erm": "tab:green", "bilevel-paper": "tab:purple"}
_LABELS = {"dp": "demographic parity difference", "soft_dp": "soft DP (gap of mean score)",
           "eo": "equalized odds difference", "eopp": "equal opportunity difference"}


def _strategy_colors(strategies: Sequence[str]) -> dict[str, Any]:
    """One distinct colour per strategy: the usual ones' fixed colours, then tab20's others in order
    (beyond 20 strategies, matplotlib's cycle)."""
    import matplotlib
    fixed = {s: _COLORS[s] for s in strategies if s in _COLORS}
    used = [matplotlib.colors.to_rgb(c) for c in fixed.values()]
    free = iter([c for c in matplotlib.colormaps["tab20"].colors
                 if not any(np.allclose(c, u) for u in used)])
    return {s: fixed[s] if s in fixed else next(free, None) for s in strategies}


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install matplotlib (or fairbinn[plot])") from None
    return plt


def read_reference_points(path: str | os.PathLike, fairness: str = "dp") -> pd.DataFrame:
    """Reference points from a CSV with the columns ``label``, ``accuracy`` and ``<fairness>``.

    Raises ``ValueError`` naming the file and the missing columns or bad values.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference points file not found: {path}")
    frame = pd.read_csv(path)
    missing = [c for c in ("label", "accuracy", fairness) if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected label, accuracy, {fairness}")
    for column in ("accuracy", fairness):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame.index[values.isna() | (values < 0) | (values > 1)].tolist()
        if bad:
            raise ValueError(f"{path}: column {column!r} must hold numbers in [0, 1]; bad value on line {bad[0] + 2}")
        frame[column] = values
    return frame


def plot_fronts(
    table: pd.DataFrame,
    *,
    fairness: str = "dp",
    split: str = "test",
    budgets: Sequence[float] = DP_BUDGETS,
    reference: pd.DataFrame | str | os.PathLike | None = None,
    title: str | None = None,
    ax: Any = None,
):
    """Accuracy against unfairness of a :func:`fairbinn.sweep` table: what validation chose, at its ``split`` metrics.

    For each strategy: small dots are the checkpoints (rows) on each seed's
    *validation* Pareto front (validation accuracy up, validation
    ``fairness`` down); the line joins, for each budget, the checkpoint
    :func:`~fairbinn.core.pareto.accuracy_at_budgets` chooses on validation,
    as the mean over seeds with one standard deviation as error bars (a
    budget no seed meets is left out). Every choice is made on the validation
    columns; the ``split`` columns only place the points. ``budgets`` are
    drawn as dotted vertical lines; ``reference`` points (a DataFrame or a
    CSV read by :func:`read_reference_points`, e.g. the paper's) as black
    crosses with their labels.

    Returns the matplotlib ``Figure``; :func:`save_figure` writes it.
    """
    plt = _pyplot()
    acc, unf = f"{split}_accuracy", f"{split}_{fairness}"
    needed = ("strategy", "seed", acc, unf, "val_accuracy", f"val_{fairness}")
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(f"the sweep table has no column(s) {missing}")
    if ax is None:
        figure, ax = plt.subplots(figsize=(6.4, 4.6))
    else:
        figure = ax.figure
    chosen = accuracy_at_budgets(table, budgets, fairness=fairness) if budgets else None
    colors = _strategy_colors(list(dict.fromkeys(table["strategy"])))
    for strategy, part in table.groupby("strategy", sort=False):
        color = colors[strategy]
        fronts = [pareto_front(seed_rows, accuracy="val_accuracy", unfairness=f"val_{fairness}")
                  for _, seed_rows in part.groupby("seed")]
        front = pd.concat(fronts)
        ax.scatter(front[unf], front[acc], s=9, alpha=0.35, color=color, label=f"{strategy}: validation fronts")
        if chosen is None:
            continue
        mine = chosen[(chosen["strategy"] == strategy) & chosen["found"]]
        points = mine.groupby("budget")[[unf, acc]].agg(["mean", "std"])
        if points.empty:
            continue
        ax.errorbar(points[(unf, "mean")], points[(acc, "mean")], xerr=points[(unf, "std")].fillna(0),
                    yerr=points[(acc, "std")].fillna(0), marker="o", ms=4, lw=1.2, capsize=2, color=color,
                    label=f"{strategy}: chosen per budget")
    for budget in budgets or ():
        ax.axvline(budget, color="grey", lw=0.6, ls=":")
    if reference is not None:
        points = reference if isinstance(reference, pd.DataFrame) else read_reference_points(reference, fairness)
        ax.scatter(points[fairness], points["accuracy"], marker="x", s=50, color="black", zorder=5)
        for _, point in points.iterrows():
            ax.annotate(str(point["label"]), (point[fairness], point["accuracy"]), textcoords="offset points",
                        xytext=(4, -10), fontsize=7)
    ax.set_xlabel(f"{split} {_LABELS.get(fairness, fairness)} (lower is fairer)")
    ax.set_ylabel(f"{split} accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="lower right")
    if title:
        ax.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure


def plot_history(runs: list[tuple[str, Any]], title: str | None = None):
    """Training curves of one or more runs: a row of panels over epochs.

    ``runs`` is a list of ``(label, TrainResult)``. Panels: the training BCE,
    the training fairness loss (strategies that have one), the validation
    accuracy and the validation DP. Returns the matplotlib ``Figure``.
    """
    plt = _pyplot()
    panels = [("train_bce", "training BCE"), ("train_fairness", "training fairness loss"),
              ("val_accuracy", "validation accuracy"), ("val_dp", "validation DP")]
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4))
    for index, (label, result) in enumerate(runs):
        history, color = result.history_frame(), f"C{index}"  # one colour per run in every panel
        for axis, (column, name) in zip(axes, panels):
            if column in history:
                axis.plot(history.index, history[column], lw=1.2, label=label, color=color)
                selected = result.selected_epoch
                if selected in history.index:
                    axis.plot([selected], [history.loc[selected, column]], "o", ms=4, color=color)
    for axis, (_, name) in zip(axes, panels):
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    axes[-1].legend(fontsize=7)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure


def plot_ratios(runs: list[tuple[str, Any]], title: str | None = None, group_names: list[str] | None = None):
    """Dr-Fairness sampling ratios over epochs: one panel per run, one line per ratio.

    ``runs`` is a list of ``(label, TrainResult)`` whose history has the
    sampler's ``ratio_y<label>_g<group>`` (and ``real_fraction_y<label>``,
    dashed) columns; ``group_names`` names the groups in the legend. Returns
    the matplotlib ``Figure``.
    """
    plt = _pyplot()
    runs = [(label, result) for label, result in runs if any(k.startswith("ratio_") for k in result.history[0])]
    if not runs:
        raise ValueError("no run has sampling ratios in its history (train with sampler='drfairness')")
    figure, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 3.4), squeeze=False)
    for axis, (label, result) in zip(axes[0], runs):
        history = result.history_frame()
        for column in history.columns:
            if column.startswith("ratio_y"):
                y, g = column[len("ratio_y"):].split("_g")
                group = group_names[int(g)] if group_names else f"group {g}"
                axis.plot(history.index, history[column], lw=1.2, label=f"y={y}, {group}",
                          color=f"C{int(g)}", ls="-" if y == "1" else ":")
            elif column.startswith("real_fraction_y"):
                axis.plot(history.index, history[column], lw=1.2, color="k", ls="--" if column[-1] == "1" else "-.",
                          label=f"real fraction, y={column[-1]}")
        axis.set_title(label, fontsize=9)
        axis.set_xlabel("epoch")
        axis.set_ylabel("ratio")
        axis.set_ylim(0, 1)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=6)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure


def save_figure(figure: Any, path: str | os.PathLike, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Write ``figure`` as ``path`` with each suffix in ``formats``; returns the files written."""
    stem = Path(path)
    if stem.suffix.lstrip(".") in formats:
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in formats:
        target = stem.with_suffix(f".{suffix}")
        figure.savefig(target, dpi=150)
        written.append(target)
    return written
