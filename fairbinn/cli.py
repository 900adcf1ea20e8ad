"""Command line: ``fairbinn train`` and ``fairbinn sweep`` (also ``python -m fairbinn ...``).

Accepts the flags of the FairBiNN authors' ``train_tabular.py`` (``--mode``,
``--eta``, ``--data``, ``--fairness_layers``, ``--acc_layers``,
``--fairness_position``, ``--device``, ``--epochs``, ``--batch_size``,
``--network_learning_rate``, ``--fairness_learning_rate``) with their meaning,
plus fairbinn's own. ``--mode`` takes several strategies to compare them on the
same network and data. ``--data`` picks the modality: Adult and Health train
the MLP, NBA, Pokec_z, Pokec_n and Bail a GNN (``--backbone gcn`` or ``gat``), CelebA
an image classifier (``--target Smiling``, ``--backbone resnet18`` or any timm
model with ``--source timm``). Flags left out take the paper's settings of
that dataset.

``fairbinn sweep`` takes the same flags with ``--etas`` and ``--seeds`` lists
and trains the whole accuracy-fairness trade-off (see :func:`fairbinn.sweep`).

``fairbinn download adult|health|nba|pokec_z|pokec_n|bail|celeba`` fetches and
verifies the datasets (see :mod:`fairbinn.download`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from . import __version__
from .core.checkpoint import CHECKPOINT_NAME
from .core.config import (
    CheckpointConfig, FairnessConfig, FollowerConfig, GameConfig, OptimConfig, RuntimeConfig, SECTIONS,
    SelectionConfig, StackelbergConfig, STRATEGY_NAMES, TrainConfig,
)
from .core import distributed
from .core.drfairness import DrFairnessConfig
from .core.pareto import DP_BUDGETS, accuracy_at_budgets
from .core.postprocess import THRESHOLD_METRICS, threshold_result
from .core.metrics import REPORT_KEYS
from .core.options import add_flags, dest_of, flag_name, options_of, values_from_args
from .core.runtime import DeviceNotAvailableError
from .core.strategies import list_strategies
from .core.trainer import TrainResult
from .benchmark import Benchmark, get_benchmark, run
from .download import DOWNLOADS, DownloadError, download
from .graph.backbones import list_gnn_bodies
from .core.saving import json_ready, save_model
from .settings_file import effective_settings, with_settings_file
from .sweeps import PAPER_ETAS, ROWS, choose_under_budget, sweep
from .tabular.csv import load_csv
from .tabular.preprocess import TabularDataset
from .vision.backbones import SOURCES, list_vision_fairness

MODE_ALIASES = {"reg": "lagrangian", "linear": "bilevel"}
"""The authors' ``--mode`` names: ``reg`` is the penalty (Lagrangian) method,
``linear`` their linear fairness layers trained as the follower (bilevel)."""

_COLUMNS = {
    "accuracy": "accuracy", "auc": "AUC", "ap": "AP", "f1": "F1", "dp": "DP", "eo": "EO",
    "eopp": "EOpp", "soft_dp": "soft DP", "soft_eo": "soft EO",
}


def _mode(value: str) -> str:
    name = MODE_ALIASES.get(value.lower(), value.lower())
    if name == "best":
        return name
    if name not in list_strategies():  # the registry now: register_strategy may have added names
        raise argparse.ArgumentTypeError(
            f"unknown mode {value!r}; choose one of {', '.join(list_strategies())}, best (aliases: reg = "
            "lagrangian, linear = bilevel)"
        )
    return name


_FLAG_SCOPE = {
    "acc_layers": ("tabular", "csv"), "fairness_position": ("tabular", "csv"),
    "batch_size": ("tabular", "vision", "csv"), "label": ("csv",), "positive": ("csv",), "sensitive": ("vision", "csv"),
    "backbone": ("graph", "vision"),
    **dict.fromkeys(("hidden", "label_number", "split_seed", "disjoint_val", "graph_folder", "fairness_nodes",
                     "sparse_adjacency"), ("graph",)),
    **dict.fromkeys(("target", "source", "pretrained", "image_size", "max_images", "workers",
                     "cache_dir"), ("vision",)),
}
"""Flags that only some modalities use; giving one to another is an error, not silently ignored."""

_OPTIONS = {dest_of(f): f for cls in (*SECTIONS.values(), TrainConfig, DrFairnessConfig)
            for f, _ in options_of(cls)}
"""Each training flag's destination and its declaration (:mod:`fairbinn.core.options`)."""

_MODE_SCOPE = {dest: f.metadata["option"].modes for dest, f in _OPTIONS.items() if f.metadata["option"].modes}
"""Flags that only some of the built-in strategies read (each option's ``modes``): erm has no fairness term, only
the two-player games (bilevel, stackelberg) have a follower, only stackelberg's leader takes a hypergradient. A
flag none of the given modes reads is an error; a registered strategy of another name may read any of them."""


def _etas(value: str) -> float | str:
    if value.lower() == "auto":
        return "auto"
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"an eta is a number or 'auto', got {value!r}") from None


def _dataset(value: str) -> str:
    try:
        return get_benchmark(value).name
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The data, model and output flags, and one flag per training option (declared with the option)."""
    data = parser.add_argument_group("data")
    data.add_argument("-d", "--data", type=_dataset,
                      help="Adult, Health (tabular), NBA, Pokec_z, Pokec_n, Bail (graph), CelebA (vision); "
                           "default Adult")
    data.add_argument("--csv", type=Path, help="your own table instead of --data: a CSV file with a header row "
                                               "(needs --label and --sensitive)")
    data.add_argument("--label", help="--csv: the label column")
    data.add_argument("--positive", help="--csv: the label value that counts as positive (default: of the "
                                         "label's two values, the larger as text)")
    data.add_argument("--sensitive", nargs="+",
                      help="--csv: the sensitive column(s), several make intersectional groups; "
                           "CelebA: the sensitive attribute (default Male)")
    data.add_argument("--data-dir", "--data_dir", dest="data_dir", default=None,
                      help="data directory (default $FAIRBINN_DATA, then ~/.cache/fairbinn)")

    game = parser.add_argument_group("game")
    game.add_argument("-m", "--mode", type=_mode, nargs="+", default=["bilevel"],
                      help="one or more of bilevel (alias linear), stackelberg (bilevel with an anticipating "
                           "leader), lagrangian (alias reg), erm; default bilevel. best (with --budget): trains erm, "
                           "lagrangian and bilevel, each alone (eta searched) and with group thresholds, and reports "
                           "the most accurate on validation among those certified, naming it")
    add_flags(game, GameConfig)
    add_flags(game, FollowerConfig)
    add_flags(parser.add_argument_group("stackelberg leader"), StackelbergConfig)
    add_flags(parser.add_argument_group("fairness constraint"), FairnessConfig)
    add_flags(parser.add_argument_group("optimisation"), OptimConfig)
    selection = parser.add_argument_group("selection and fairness budget")
    add_flags(selection, SelectionConfig)
    selection.add_argument("--postprocess", choices=["none", "thresholds"], default="none",
                           help="thresholds: after training, decide with one threshold per group on the model's "
                                "scores, the most accurate meeting --budget on --budget-metric (dp, eo or eopp), "
                                "certified at --confidence on the validation rows: the thresholds are fitted on the "
                                "training rows' scores of the last epoch, so nothing about the model reads the "
                                "validation rows (--confidence 0: the epoch chosen on validation accuracy and the "
                                "thresholds fitted on the validation rows). Predictions then need each row's group. "
                                "Works with every --mode (with --eta or the mode's default eta)")
    selection.add_argument("--randomized-thresholds", action="store_true",
                           help="--postprocess thresholds: allow a random choice between two thresholds per group, "
                                "as fairlearn's ThresholdOptimizer does (dp and eopp)")
    sampler = parser.add_argument_group("sampler")
    add_flags(sampler, TrainConfig)
    add_flags(sampler, DrFairnessConfig)
    add_flags(parser.add_argument_group("runtime"), RuntimeConfig)

    net = parser.add_argument_group("network (the authors' conventions)")
    net.add_argument("-al", "--acc_layers", "--acc-layers", dest="acc_layers", type=int, nargs="+",
                     help="widths of the accuracy network from input to output, e.g. 102 102 102 1 "
                          "(default: two hidden layers as wide as the input)")
    net.add_argument("-fl", "--fairness_layers", "--fairness-layers", dest="fairness_layers", type=int, nargs="+",
                     help="number of fairness layers (one integer), or their widths as in the authors' code "
                          "(W W = one layer); default 1 for Adult, 3 for Health")
    net.add_argument("-fp", "--fairness_position", "--fairness-position", dest="fairness_position", type=int,
                     help="1-based index into --acc_layers of the width the fairness block acts on; "
                          "the block follows the first P-1 layers (default: after both hidden layers)")
    net.add_argument("--fairness-layer-type", default="linear", choices=list_vision_fairness(),
                     help="fairness block (default linear); conv_residual and layer4 for images only")
    net.add_argument("--dropout", type=float, help="dropout (default 0 tabular, 0.5 graph)")

    graph = parser.add_argument_group("graph (NBA, Pokec_z, Pokec_n, Bail)")
    graph.add_argument("--backbone", help=f"graph: GNN body, one of {', '.join(list_gnn_bodies())} (default gcn); "
                                          "CelebA: a torchvision ResNet or timm model name (default resnet18)")
    graph.add_argument("--hidden", type=int, default=64, help="GNN hidden width (default 64)")
    graph.add_argument("--label-number", type=int, help="label budget (default the published: 100 NBA and Bail, 500 Pokec)")
    graph.add_argument("--split-seed", type=int, default=20, help="seed of the node split (default 20, FairGNN's)")
    graph.add_argument("--disjoint-val", action="store_true",
                       help="NBA: separate validation and test nodes (default: FairGNN's published NBA split, "
                            "where the test nodes double as validation nodes)")
    graph.add_argument("--graph-folder", help="sub-directory of the data directory holding the files "
                                              "(default nba / pokec)")
    graph.add_argument("--fairness-nodes", choices=["train", "all"], default="train",
                       help="nodes of the fairness loss: the training nodes (default) or every node with a known "
                            "group (a DP constraint only; no label of another node is read)")
    graph.add_argument("--sparse-adjacency", action="store_true",
                       help="full-batch passes on a sparse CSR adjacency: the same model, faster GCN and "
                            "GraphSAGE steps on a CPU")

    vision = parser.add_argument_group("vision (CelebA)")
    vision.add_argument("--target", default="Attractive", help="target attribute (default Attractive)")
    vision.add_argument("--source", default="torchvision", choices=SOURCES, help="model library (default torchvision)")
    vision.add_argument("--pretrained", help="local weights file for the backbone (default: random init)")
    vision.add_argument("--image-size", type=int, default=64, help="images resized to this square size (default 64)")
    vision.add_argument("--max-images", type=int, help="at most this many images over the three splits (default all)")
    vision.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    vision.add_argument("--cache-dir", help="pre-resized image store (default ~/.cache/fairbinn/image_cache)")

    add_flags(parser.add_argument_group("checkpoints"), CheckpointConfig)

    out = parser.add_argument_group("output")
    out.add_argument("-o", "--output", type=Path, help="write configuration, history and metrics as JSON")


def _add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="a settings file (.toml, .json; .yaml with PyYAML) setting any option by its flag name "
                             "(e.g. budget = 0.05, mode = [\"erm\", \"bilevel\"]); the command line overrides it. "
                             "The effective settings are written beside the results as JSON (--output, --save, "
                             "--table), itself a settings file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fairbinn", description="Fairness-aware training with FairBiNN.")
    parser.add_argument("--version", action="version", version=f"fairbinn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser(
        "train", help="train and evaluate on a tabular, graph or image benchmark",
        description="Train ERM, Lagrangian and/or bilevel (FairBiNN) models on a benchmark "
                    "and print test metrics of the epoch selected on validation.",
    )
    _add_train_arguments(train)
    _add_config_argument(train)
    train.add_argument("--plot", type=Path, help="write training curves (losses, validation accuracy and DP per "
                                                 "epoch; dots mark the selected epochs) as PATH.png and PATH.svg")
    train.add_argument("--save", type=Path, help="write each mode's chosen model into DIR/<mode>/ (state_dict, "
                                                 "builder, config and metrics); load it with fairbinn.load_model")
    sweep_parser = commands.add_parser(
        "sweep", help="train the accuracy-fairness trade-off: strategies x etas x seeds",
        description="Train every (strategy, eta, seed) model on one dataset (tabular models of one strategy "
                    "as one stack), print the fronts' points and the test accuracy at unfairness budgets "
                    "(chosen on validation), and optionally write the table (--table, CSV) and a plot.",
    )
    _add_train_arguments(sweep_parser)
    _add_config_argument(sweep_parser)
    sweep_parser.set_defaults(mode=["bilevel", "lagrangian", "erm"])
    group = sweep_parser.add_argument_group("sweep")
    group.add_argument("--etas", type=_etas, nargs="+", default=list(PAPER_ETAS),
                       help="eta values (default 0 10 30 100 300 1000 3000 10000), or 'auto' (searched per mode on "
                            "validation, 16 etas); --mode defaults to all three")
    group.add_argument("--seeds", type=int, nargs="+", default=[0], help="model seeds (default 0)")
    group.add_argument("--no-stack", action="store_true", help="train one model at a time")
    group.add_argument("--max-stack", type=int, help="most models trained together (default: all of a strategy)")
    group.add_argument("--fused-adam", action="store_true",
                       help="fused Adam for stacks: faster, rounds differently from separate runs")
    group.add_argument("--fairness", default="dp", choices=["dp", "soft_dp", "eo", "eopp", "soft_eo"],
                       help="unfairness metric of the budgets and the plot (default dp)")
    group.add_argument("--budgets", type=float, nargs="+", default=list(DP_BUDGETS),
                       help="unfairness budgets (default 0.01 0.02 0.05 0.1)")
    group.add_argument("--table", type=Path, help="write the table as CSV, one row per checkpoint (see --rows)")
    group.add_argument("--rows", choices=list(ROWS), default="epochs",
                       help="rows of --table: every checkpoint (epochs, default) or each model's selected epoch")
    group.add_argument("--plot", type=Path, help="write the plot as PATH.png and PATH.svg")
    group.add_argument("--reference", type=Path, help="CSV of reference points (label, accuracy, <fairness>)")
    fetch = commands.add_parser(
        "download", help="download datasets into the data directory and verify their sha256",
        description="Fetch datasets from their canonical sources (or --mirror) into <data dir>/<folder>/, "
                    "resuming partial files and verifying sizes and sha256 checksums. CelebA needs a licence "
                    "agreement: its manual steps are printed instead.",
    )
    fetch.add_argument("datasets", nargs="+", metavar="dataset", type=lambda value: value.lower().replace("-", "_"),
                       choices=list(DOWNLOADS), help=" | ".join(DOWNLOADS))
    fetch.add_argument("--data-dir", "--data_dir", dest="data_dir", default=None,
                       help="data directory (default $FAIRBINN_DATA, then ~/.cache/fairbinn)")
    fetch.add_argument("--mirror", metavar="URL", help="fetch every file from URL/<folder>/<file> instead of "
                                                       "the canonical sources, e.g. URL/nba/nba.csv")
    fetch.add_argument("--force", action="store_true", help="download again files already in place")
    fetch.add_argument("--retries", type=int, default=3,
                       help="times an interrupted transfer is resumed before giving up (default 3)")
    return parser


def model_kwargs(args: argparse.Namespace, data: TabularDataset) -> dict[str, Any]:
    """Translate the authors' network flags into :func:`~fairbinn.tabular.paper_mlp` arguments."""
    width = data.num_features
    kwargs: dict[str, Any] = {"fairness_layer": args.fairness_layer_type, "dropout": args.dropout or 0.0}
    hidden = [width, width]
    if args.acc_layers:
        widths = args.acc_layers
        if len(widths) < 2 or widths[0] != width or widths[-1] != 1:
            raise ValueError(
                f"--acc_layers must run from the input width {width} of {data.name} to 1, "
                f"e.g. {width} {width} {width} 1; got {' '.join(map(str, widths))}"
            )
        hidden = widths[1:-1]
        kwargs["hidden_dims"] = hidden
    if args.fairness_position is not None:
        if not 1 <= args.fairness_position <= len(hidden) + 1:
            raise ValueError(f"--fairness_position must be from 1 to {len(hidden) + 1}, got {args.fairness_position}")
        kwargs["fairness_position"] = args.fairness_position - 1
    if args.fairness_layers:
        layers = args.fairness_layers
        if len(layers) == 1:
            kwargs["num_fairness_layers"] = layers[0]
        else:
            block = ([width] + hidden)[kwargs.get("fairness_position", len(hidden))]
            if any(w != block for w in layers):
                raise ValueError(
                    f"fairness layers are width-preserving: --fairness_layers widths must all equal "
                    f"{block} at this position; got {' '.join(map(str, layers))}"
                )
            kwargs["num_fairness_layers"] = len(layers) - 1
    return kwargs


def _format(value: float | None) -> str:
    return "   n/a" if value is None or math.isnan(value) else f"{value:.4f}"


def results_table(rows: list[tuple[str, TrainResult]], budget_metric: str | None = None) -> str:
    """A plain-text table of test metrics, one row per (label, result).

    With ``budget_metric``, two columns more: the selected epoch's validation
    gap and whether it met the budget.
    """
    keys = list(REPORT_KEYS)
    label_width = max([22, *(len(label) + 1 for label, _ in rows)])
    certified = budget_metric is not None and any(getattr(r, "certificate", None) is not None for _, r in rows)
    budget_head = f"{'val ' + _COLUMNS[budget_metric]:>10} {'met':>4}  " if budget_metric else ""
    if certified:
        budget_head += f"{'val bound':>9} {'certified':>9}  "
    header = f"{'model':<{label_width}} {'epoch':>5}  {budget_head}" + "  ".join(f"{_COLUMNS[k]:>8}" for k in keys)
    lines = [header, "-" * len(header)]
    for label, result in rows:
        cells = "  ".join(f"{_format(result.test.get(k)):>8}" for k in keys)
        budget = ""
        if budget_metric:
            met = {True: "yes", False: "no", None: "-"}[result.budget_met]
            if getattr(result, "certificate", None) is not None:  # met: the validation gap itself is in budget
                gap = result.val.get(budget_metric)
                met = "yes" if gap is not None and gap <= result.certificate["budget"] else "no"
            if result.budget_met and getattr(result, "constant_prediction", None) is not None:
                met += "*"
            budget = f"{_format(result.val.get(budget_metric)):>10} {met:>4}  "
            if certified:
                certificate = result.certificate or {}
                verdict = {True: "yes", False: "no"}.get(certificate.get("certified"), "-")
                budget += f"{_format(certificate.get('upper_bound')):>9} {verdict:>9}  "
        lines.append(f"{label:<{label_width}} {result.selected_epoch:>5}  {budget}{cells}")
    notes = sorted({f"{_COLUMNS[k]}: {why}" for _, r in rows for k, why in r.undefined.get("test", {}).items()})
    if notes:
        lines.append("n/a: the test split cannot measure " + "; ".join(notes))
    constant = [(label, r.constant_prediction) for label, r in rows
                if budget_metric and r.budget_met and getattr(r, "constant_prediction", None) is not None]
    if constant:
        lines.append("*: met by predicting one class for every validation row: "
                     + "; ".join(f"{label} (class {value})" for label, value in constant))
    intervals = [(label, r.test_intervals) for label, r in rows if getattr(r, "test_intervals", None)]
    if intervals:
        lines.append("test gaps, 95% intervals on the population gap (exact: Clopper-Pearson per group, Hoeffding "
                     "for soft gaps, union bound over groups):")
        for label, ranges in intervals:
            shown = ", ".join(f"{_COLUMNS[k]} [{_format(lo).strip()}, {_format(hi).strip()}]"
                              for k, (lo, hi) in ranges.items())
            lines.append(f"  {label}: {shown}")
    return "\n".join(lines)


def _config(args: argparse.Namespace, defaults: dict[str, Any]) -> TrainConfig:
    """The training configuration: flags given, else the dataset's paper settings (``defaults``), else
    TrainConfig's."""
    given = {name: value for cls in SECTIONS.values() for name, value in values_from_args(cls, args).items()}
    sampler = DrFairnessConfig(**values_from_args(DrFairnessConfig, args)) if args.sampler == "drfairness" \
        else args.sampler
    return TrainConfig(**{**defaults, **given}, sampler=sampler)


def _checkpointing(args: argparse.Namespace, mode: str, resume: dict[str, bool]) -> dict[str, Any]:
    """Checkpoint settings of one mode's run: its own sub-directory of --checkpoint-dir; ``resume``: whether
    each mode continues from its checkpoint (see :func:`_checkpoint_plan`)."""
    if args.checkpoint_dir is None:
        return {}
    return {"checkpoint_dir": str(args.checkpoint_dir / mode), "checkpoint_every": args.checkpoint_every,
            "resume": resume[mode], "overwrite": bool(args.overwrite)}


def _checkpoint_plan(args: argparse.Namespace, modes: list[str]) -> dict[str, bool]:
    """Whether each mode resumes from ``--checkpoint-dir/<mode>/checkpoint.pt`` (empty without --checkpoint-dir).

    Without --resume or --overwrite, a checkpoint of any of ``modes`` already there is refused before any mode
    trains. With --resume, a mode that has none yet trains from the start (said on the log)."""
    if args.resume and args.overwrite:
        raise ValueError("--resume continues the checkpoints in --checkpoint-dir and --overwrite writes over them; "
                         "give one of them")
    if args.checkpoint_dir is None:
        for flag, given in (("--resume", args.resume), ("--overwrite", args.overwrite),
                            ("--checkpoint-every", args.checkpoint_every != TrainConfig().checkpoint_every)):
            if given:
                raise ValueError(f"{flag} needs --checkpoint-dir")
        return {}
    found = {mode: (args.checkpoint_dir / mode / CHECKPOINT_NAME).is_file() for mode in modes}
    if args.overwrite:
        return dict.fromkeys(modes, False)
    if not args.resume and any(found.values()):
        held = ", ".join(str(args.checkpoint_dir / mode / CHECKPOINT_NAME) for mode in modes if found[mode])
        raise ValueError(f"--checkpoint-dir {args.checkpoint_dir} already holds checkpoints: {held}; give --resume "
                         "to continue them, or --overwrite to train from the start and write over them")
    for mode in modes:
        if args.resume and not found[mode]:
            logging.getLogger("fairbinn").warning("%s: no checkpoint in %s yet; --resume trains it from the start",
                                                  mode, args.checkpoint_dir / mode)
    return found


def _figure_files(path: Path) -> list[Path]:
    """The files :func:`~fairbinn.plotting.save_figure` writes for ``path``: PATH.png and PATH.svg."""
    stem = path.with_suffix("") if path.suffix in (".png", ".svg") else path
    return [stem.with_name(stem.name + suffix) for suffix in (".png", ".svg")]


def _check_writable(flag: str, path: Path, directory: bool) -> None:
    """``path`` can be written as a file (or made a directory): not an existing directory (file), and its
    nearest existing ancestor a directory this process may write in."""
    if directory and path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path} is a file, not a directory")
    if not directory and path.is_dir():
        raise ValueError(f"{flag} {path} is a directory; give a file name")
    existing = path if path.exists() else path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() and existing != path:
        raise ValueError(f"{flag} {path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | (os.X_OK if existing.is_dir() else 0)):
        raise ValueError(f"{flag} {path}: no permission to write in {existing}")


def _check_outputs(args: argparse.Namespace, modes: list[str]) -> dict[str, bool]:
    """Refuse, before anything trains, an output that could not be written (--plot, --save, --output,
    --checkpoint-dir; sweep's --table and --plot) and checkpoints that would be written over; return whether
    each mode resumes (see :func:`_checkpoint_plan`)."""
    plot = getattr(args, "plot", None)
    if plot is not None and importlib.util.find_spec("matplotlib") is None:
        raise ValueError("--plot needs matplotlib: pip install matplotlib (or fairbinn[plot])")
    files = [("--output", args.output), ("--table", getattr(args, "table", None))]
    files += [("--plot", path) for path in (_figure_files(plot) if plot is not None else [])]
    folders = [(flag, folder) for flag, folder in (("--save", getattr(args, "save", None)),
                                                   ("--checkpoint-dir", args.checkpoint_dir)) if folder is not None]
    for flag, path in files:
        if path is not None:
            _check_writable(flag, path, directory=False)
    for flag, folder in folders:
        _check_writable(flag, folder, directory=True)
        for mode in modes:
            _check_writable(flag, folder / mode, directory=True)
    return _checkpoint_plan(args, modes)


def _selection(args: argparse.Namespace, val_is_test: bool) -> tuple[str | None, str]:
    """The selection metric and how to describe it."""
    if getattr(args, "postprocess", "none") == "thresholds":
        if val_is_test:
            raise ValueError("--postprocess thresholds certifies on validation, but this split's validation nodes "
                             "are its test nodes; add --disjoint-val")
        if args.select is not None:
            raise ValueError("--postprocess thresholds chooses the epoch itself (the last, or with --confidence 0 "
                             "the most accurate on validation); it cannot be combined with --select")
        if args.confidence == 0:
            return "accuracy", (f"validation accuracy, then group thresholds fitted on validation to "
                                f"{args.budget_metric} <= {args.budget:g}")
        level = 0.95 if args.confidence is None else args.confidence
        return None, (f"last epoch, then group thresholds fitted on the training rows and certified to have a "
                      f"population {args.budget_metric} <= {args.budget:g} at {level:.0%} confidence on validation")
    if args.budget is not None:
        if args.select is not None:
            raise ValueError("--budget chooses the most accurate epoch under the budget on validation; "
                             "it cannot be combined with --select")
        if val_is_test:
            raise ValueError("--budget chooses on validation, but this split's validation nodes are its test "
                             "nodes; add --disjoint-val")
        searched = " over automatically searched etas" if args.eta is None else ""
        if args.confidence == 0:
            return "accuracy", (f"validation accuracy among the epochs{searched} whose validation "
                                f"{args.budget_metric} is <= {args.budget:g}")
        level = 0.95 if args.confidence is None else args.confidence
        return "accuracy", (f"validation accuracy among the epochs{searched} certified to have a population "
                            f"{args.budget_metric} <= {args.budget:g} at {level:.0%} confidence")
    if args.select is None and val_is_test:
        return None, "last epoch (the validation nodes are the test nodes in this split)"
    select = args.select or "accuracy"
    if select == "last":
        return None, "last epoch"
    return select, f"validation {select}" + (" = test, in this split" if val_is_test else "")


def _train_modes(args: argparse.Namespace, data: Any, config: TrainConfig, select: str | None,
                 kwargs: dict[str, Any], loader_kwargs: dict[str, Any],
                 resume: dict[str, bool]) -> list[tuple[str, TrainResult]]:
    """One result per --mode: a single run, or with --budget and no --eta the best checkpoint of an eta search.

    Every mode's configuration is built (and validated) before the first mode trains."""
    postprocess = args.postprocess == "thresholds"
    search = args.budget is not None and args.eta is None and not postprocess
    if "best" in args.mode:
        if args.budget is None or args.confidence == 0 or postprocess or args.eta is not None:
            raise ValueError("--mode best chooses among certified candidates: give --budget B, without --eta, "
                             "--postprocess or --confidence 0")
        if args.checkpoint_dir is not None:
            raise ValueError("--mode best trains many models, which are not checkpointed; drop --checkpoint-dir")
    if search and args.checkpoint_dir is not None:
        raise ValueError("--budget without --eta searches eta over many models, which are not checkpointed; "
                         "give --eta to train one model per mode with --checkpoint-dir")
    if search and (loader_kwargs.get("fairness_nodes", "train") != "train" or loader_kwargs.get("sparse_adjacency")):
        raise ValueError("--fairness-nodes and --sparse-adjacency apply to one model per mode; the eta search of "
                         "--budget without --eta does not take them: give --eta")
    if postprocess:  # the budget is the thresholds': the model trains without one
        config = config.replace(fairness_budget=None, confidence=None)
    configs = {mode: config.for_strategy("bilevel" if mode == "best" else mode, selection_metric=select,
                                         **_checkpointing(args, mode, resume))
               for mode in dict.fromkeys(args.mode)}
    runs = []
    for mode, mode_config in configs.items():
        if mode == "best":
            choice = choose_under_budget(data, "best", args.budget, budget_metric=args.budget_metric, seed=args.seed,
                                         config=mode_config, model_kwargs=kwargs)
            choice.result.extra["chosen"] = choice.strategy
            result = choice.result
        elif search and mode != "erm":
            result = choose_under_budget(data, mode, args.budget, budget_metric=args.budget_metric, seed=args.seed,
                                         config=mode_config, model_kwargs=kwargs).result
        else:
            result = run(data, mode_config, model_kwargs=kwargs, loader_kwargs=loader_kwargs)
        if postprocess:
            train, val, test = get_benchmark(data).loaders(data, mode_config, **loader_kwargs)
            result = threshold_result(result, train, val, test, budget=args.budget, metric=args.budget_metric,
                                      confidence=0.95 if args.confidence is None else args.confidence,
                                      randomized=args.randomized_thresholds, seed=args.seed,
                                      group_names=getattr(data, "group_names", None))
        runs.append((mode, result))
    return runs


def _graph_options(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    data = {"split_seed": args.split_seed,
            **({"label_number": args.label_number} if args.label_number is not None else {}),
            **({"test_as_val": False} if args.disjoint_val else {}),
            **({"folder": args.graph_folder} if args.graph_folder else {})}
    model = {"backbone": args.backbone or "gcn", "hidden_channels": args.hidden,
             "fairness_layer": args.fairness_layer_type, "dropout": 0.5 if args.dropout is None else args.dropout}
    return data, model, {"fairness_nodes": args.fairness_nodes, "sparse_adjacency": args.sparse_adjacency}


def _vision_options(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    if args.sensitive and len(args.sensitive) > 1:
        raise ValueError("CelebA takes one --sensitive attribute")
    data = {"target": args.target, "sensitive": args.sensitive[0] if args.sensitive else "Male",
            "image_size": args.image_size, "max_images": args.max_images, "cache_dir": args.cache_dir,
            "progress": args.progress is not False}
    model = {"name": args.backbone or "resnet18", "source": args.source, "fairness": args.fairness_layer_type,
             "pretrained": args.pretrained}
    return data, model, {"num_workers": args.workers}


def _setup(args: argparse.Namespace, modality: str, seed: int) -> tuple[Benchmark, Any, TrainConfig, dict, dict]:
    """Benchmark, dataset, configuration (the dataset's paper settings, then the flags), model and loader arguments."""
    options = {"graph": _graph_options, "vision": _vision_options}.get(modality)
    data_kwargs, kwargs, loader_kwargs = options(args) if options else ({"seed": seed}, {}, {})
    if args.csv is not None:
        data = load_csv(args.csv, args.label, args.sensitive, positive=args.positive, seed=seed)
        benchmark = get_benchmark(data)
    else:
        benchmark = get_benchmark(args.data)
        data = benchmark.load(args.data_dir, **data_kwargs)
    if modality == "tabular":
        kwargs = model_kwargs(args, data)
    elif args.fairness_layers:
        if len(args.fairness_layers) != 1:
            raise ValueError(f"for {modality} data, --fairness_layers takes one integer, the number of fairness "
                             "layers")
        kwargs["num_fairness_layers"] = args.fairness_layers[0]
    return benchmark, data, _config(args, benchmark.paper_settings(data)), kwargs, loader_kwargs


def _check_scope(args: argparse.Namespace) -> str:
    """The modality of ``args``' data; a flag of another modality, or one no given mode reads, is an error."""
    if args.csv is not None:
        if args.data is not None:
            raise ValueError("give either --data or --csv, not both")
        if not args.label or not args.sensitive:
            raise ValueError("--csv needs --label COLUMN and --sensitive COLUMN [COLUMN ...]")
        modality, scope, shown = "tabular", "csv", str(args.csv)
    else:
        args.data = args.data or "adult"
        modality = scope = get_benchmark(args.data).modality
        shown = args.data
    defaults = vars(build_parser().parse_args(["train"]))
    for dest, scopes in _FLAG_SCOPE.items():
        if scope not in scopes and getattr(args, dest) != defaults[dest]:
            raise ValueError(
                f"{_flag(dest)} does not apply to {shown} ({scope} data); it is for {' and '.join(scopes)} data"
            )
    modes = list(dict.fromkeys(args.mode))
    unread = [f"{_flag(dest, getattr(args, dest))} does not apply to --mode {' '.join(modes)}; it is for "
              f"{', '.join(readers[:-1]) + ' and ' if len(readers) > 1 else ''}{readers[-1]}"
              for dest, readers in _MODE_SCOPE.items()
              if getattr(args, dest) != defaults[dest]
              and not any(mode in readers or mode not in STRATEGY_NAMES for mode in modes)]
    if unread:
        raise ValueError("; ".join(unread))
    _check_values(args)
    return modality


def _flag(dest: str, value: Any = None) -> str:
    """The flag of ``dest`` as given: a switch set off by its off-flag (``--paper-game``) is named by that."""
    declared = _OPTIONS.get(dest)
    if declared is None:
        return "--" + dest.replace("_", "-")
    off = declared.metadata["option"].off_flags
    return off[0] if value is False and off else flag_name(declared)


def _check_values(args: argparse.Namespace) -> None:
    """Values the training configuration would take but that mean nothing (a budget above 1, a negative seed)."""
    if args.budget is not None and not 0 < args.budget <= 1:
        raise ValueError(f"--budget bounds a gap between groups' rates, so it must be in (0, 1]; got {args.budget:g}")
    if args.confidence is not None:
        if not 0 <= args.confidence < 1:  # also NaN
            raise ValueError(f"--confidence is a probability in [0, 1) (0: the point-estimate rule); "
                             f"got {args.confidence:g}")
        if args.budget is None:
            raise ValueError("--confidence certifies a fairness budget; give --budget B too")
    postprocess, randomized = getattr(args, "postprocess", "none"), getattr(args, "randomized_thresholds", False)
    if postprocess == "thresholds":
        if args.budget is None:
            raise ValueError("--postprocess thresholds fits the thresholds to a fairness budget; give --budget B")
        if args.budget_metric not in THRESHOLD_METRICS:
            raise ValueError(f"--postprocess thresholds cannot control --budget-metric {args.budget_metric}: it is "
                             "a gap of mean scores, which thresholds do not change; use "
                             + ", ".join(THRESHOLD_METRICS))
        if randomized and args.budget_metric == "eo":
            raise ValueError("--randomized-thresholds supports --budget-metric dp and eopp; use deterministic "
                             "thresholds for eo")
    elif randomized:
        raise ValueError("--randomized-thresholds applies to --postprocess thresholds")
    for flag, seeds in (("--seed", [args.seed]), ("--seeds", getattr(args, "seeds", []))):
        negative = [seed for seed in seeds if seed < 0]
        if negative:
            raise ValueError(f"{flag} must be a non-negative integer, got {negative[0]}")
    if args.csv is not None and args.csv.is_dir():
        raise ValueError(f"--csv {args.csv} is a directory, not a CSV file")


def train_command(args: argparse.Namespace) -> int:
    modality = _check_scope(args)
    # under torchrun (WORLD_SIZE > 1) this process is one of a data-parallel run; rank 0 reports
    joined = distributed.init_from_env(device=args.device)
    main_process = distributed.is_main_process()
    if not main_process:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        # rank 0 looks at the file system (the others may not share it) and every process gets its answer
        resume = distributed.from_main_process(_check_outputs, args, list(dict.fromkeys(args.mode)))
        benchmark, data, config, kwargs, loader_kwargs = _setup(args, modality, args.seed)
        select, described = _selection(args, getattr(data, "val_is_test", False))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*validation nodes are the test nodes")  # said in the title
            results = _train_modes(args, data, config, select, kwargs, loader_kwargs, resume)
        title = (f"{benchmark.headline(data, kwargs)} (seed {args.seed}, {config.epochs} epochs, epoch chosen by "
                 f"{described})")
    finally:
        if joined:
            distributed.destroy()
    if not main_process:
        return 0
    runs = []
    for mode, result in results:
        eta = result.config["eta"]
        name = "bilevel-paper" if mode == "bilevel" and args.leader_penalty is False else mode
        label = f"{name} (eta={eta:.3g})" if mode != "erm" else "erm"
        if mode == "best":
            chosen = result.extra["chosen"]
            label = f"best: {chosen}" if chosen.startswith("erm") else f"best: {chosen} (eta={eta:.3g})"
        label = f"{label} + dr" if args.sampler == "drfairness" else label
        runs.append((f"{label} + thresholds" if args.postprocess == "thresholds" else label, result))
    print(f"\n{title}")
    print(results_table(runs, args.budget_metric if args.budget is not None else None))
    print("DP: demographic parity difference, EO: equalized odds difference, EOpp: equal opportunity "
          "difference (true-positive-rate gap, FairGNN's 'EO'), all of thresholded predictions; "
          "soft: gaps of mean predicted probability."
          + (f" 'val {_COLUMNS[args.budget_metric]}' and 'met': the selected epoch's validation gap and whether "
             f"it meets {args.budget:g}." if args.budget is not None else "")
          + (f" 'val bound': the upper confidence bound on the population {_COLUMNS[args.budget_metric]} from the "
             f"validation rows; 'certified': whether the model is certified to meet {args.budget:g}."
             if args.budget is not None and args.confidence != 0 else ""))
    # the models and the JSON first: they are what a failing plot must not take with it
    if args.save:
        described = {name: list(getattr(data, name))
                     for name in ("feature_names", "group_names") if hasattr(data, name)}
        encoder = getattr(data, "encoder", None)  # a tabular dataset's fitted encoder: raw rows to features
        if encoder is not None and hasattr(encoder, "to_dict"):
            described["encoder"] = encoder.to_dict()
        for (mode, result), (label, _) in zip(results, runs):
            info = {"label": label, "dataset": getattr(data, "name", args.data), **described}
            metrics = {"selected_epoch": result.selected_epoch, "budget_met": result.budget_met,
                       "val": result.val, "test": result.test, "undefined": result.undefined,
                       "certificate": result.certificate}
            written = save_model(result.model, args.save / mode, config=result.config, metrics=metrics, info=info)
            print(f"wrote {written}")
        settings = args.save / "settings.json"
        settings.write_text(json.dumps(json_ready(effective_settings(args)), indent=2))
        print(f"wrote {settings}")
    if args.output:
        payload = {"command": ["fairbinn", *args.argv], "settings": effective_settings(args),
                   "runs": [{"label": label, **r.to_dict()} for label, r in runs]}
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(json_ready(payload), indent=2))
        print(f"wrote {args.output}")
    if args.plot:
        from .plotting import plot_history, save_figure

        print("wrote " + ", ".join(str(p) for p in save_figure(plot_history(runs, title=title), args.plot)))
        if args.sampler == "drfairness":
            from .plotting import plot_ratios

            ratios = plot_ratios(runs, title=f"{title}: sampling ratios")
            stem = args.plot.with_suffix("") if args.plot.suffix in (".png", ".svg") else args.plot
            print("wrote " + ", ".join(str(p) for p in save_figure(ratios, stem.with_name(stem.name + "_ratios"))))
    return 0


def sweep_command(args: argparse.Namespace) -> int:
    modality = _check_scope(args)
    if args.eta is not None:
        raise ValueError("fairbinn sweep takes --etas (a list), not --eta")
    if args.seed != TrainConfig().seed:
        raise ValueError("fairbinn sweep takes --seeds (a list), not --seed")
    if args.checkpoint_dir is not None or args.resume or args.overwrite \
            or args.checkpoint_every != TrainConfig().checkpoint_every:
        raise ValueError("fairbinn sweep does not write checkpoints; --checkpoint-dir, --checkpoint-every, --resume "
                         "and --overwrite are for train")
    if args.output is not None:
        raise ValueError("fairbinn sweep writes its results with --table FILE.csv; --output is for train")
    if "auto" in args.etas and len(args.etas) > 1:
        raise ValueError("--etas takes numbers or 'auto' alone")
    _check_outputs(args, list(dict.fromkeys(args.mode)))
    if args.reference is not None and args.plot is None:
        raise ValueError("--reference adds points to the plot; give --plot PATH too")
    if args.reference is not None and not args.reference.is_file():
        raise FileNotFoundError(f"--reference {args.reference}: no such file")
    etas = "auto" if args.etas == ["auto"] else args.etas
    _, data, config, kwargs, _ = _setup(args, modality, TrainConfig().seed)
    select, described = _selection(args, getattr(data, "val_is_test", False))
    if args.budget is None:  # an automatic eta search looks for the transition of the metric of the budgets
        config = config.replace(budget_metric=args.fairness)
    for mode in dict.fromkeys(args.mode):  # every mode's settings are valid before the first trains
        config.for_strategy(mode, selection_metric=select)
    table = sweep(data, args.mode, etas, args.seeds, config=config.replace(selection_metric=select),
                  model_kwargs=kwargs, stack=not args.no_stack, max_stack=args.max_stack,
                  fused_adam=args.fused_adam)
    fairness = args.fairness
    models = table[table["selected"]]
    print(f"\n{getattr(data, 'name', args.data)}: {len(models)} models, {len(table)} checkpoints, up to "
          f"{config.epochs} epochs; each model's epoch chosen by {described}; test metrics of those epochs, "
          f"mean over seeds {args.seeds}")
    means = models.groupby(["strategy", "eta"], sort=False)[["epoch", "test_accuracy", f"test_{fairness}"]]
    print(means.mean().round(4).to_string())
    for split, reasons in table.attrs.get("undefined", {}).items():
        print(f"NaN: the {split} split cannot measure " + "; ".join(f"{k}: {why}" for k, why in reasons.items()))
    certified = config.certifies and fairness == config.budget_metric  # the table has the bounds of this gap
    chosen = accuracy_at_budgets(table, args.budgets, fairness=fairness, certified=certified)
    found = chosen[chosen["found"]]
    rule = (f"{fairness} is certified ({config.budget_confidence:.0%} confidence) to meet" if certified
            else f"validation {fairness} meets")
    if found.empty:
        print(f"\nno checkpoint's {rule} any of the budgets {args.budgets}")
    else:
        found = found.groupby(["strategy", "budget"], sort=False)["test_accuracy"]
        print(f"\ntest accuracy of the most accurate checkpoint (on validation; any eta, any epoch) whose {rule} "
              "the budget, mean over the seeds where one does (n)")
        print(pd.DataFrame({"accuracy": found.mean().round(4), "n": found.size()}).to_string())
    if args.table:
        args.table.parent.mkdir(parents=True, exist_ok=True)
        (models if args.rows == "models" else table).to_csv(args.table, index=False)
        settings = args.table.with_name(args.table.stem + ".settings.json")
        settings.write_text(json.dumps(json_ready(effective_settings(args)), indent=2))
        print(f"wrote {args.table} and {settings}")
    if args.plot:
        from .plotting import plot_fronts, save_figure

        figure = plot_fronts(table, fairness=fairness, budgets=args.budgets, reference=args.reference,
                             title=f"{getattr(data, 'name', args.data)}: {config.epochs} epochs, seeds {args.seeds}")
        print("wrote " + ", ".join(str(p) for p in save_figure(figure, args.plot)))
    return 0


def download_command(args: argparse.Namespace) -> int:
    for name in dict.fromkeys(args.datasets):
        download(name, args.data_dir, mirror=args.mirror, force=args.force, retries=args.retries)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv.insert(0, "train")  # the authors' scripts take flags without a sub-command
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    settings_file = None
    if argv and argv[0] in ("train", "sweep"):
        try:
            argv, settings_file = with_settings_file(argv, commands.choices[argv[0]])
        except ValueError as error:
            parser.exit(2, f"fairbinn: error: {error}\n")
    args = parser.parse_args(argv)
    args.argv = argv
    args.config = settings_file
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return {"train": train_command, "sweep": sweep_command, "download": download_command}[args.command](args)
    except (ValueError, FileNotFoundError, DeviceNotAvailableError, FloatingPointError, DownloadError) as error:
        parser.exit(2, f"fairbinn: error: {error}\n")


if __name__ == "__main__":
    raise SystemExit(main())
