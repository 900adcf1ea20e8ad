"""Command line: ``fairbinn train`` (also ``python -m fairbinn train``).

Accepts the flags of the FairBiNN authors' ``train_tabular.py`` (``--mode``,
``--eta``, ``--data``, ``--fairness_layers``, ``--acc_layers``,
``--fairness_position``, ``--device``, ``--epochs``, ``--batch_size``,
``--network_learning_rate``, ``--fairness_learning_rate``) with their meaning,
plus fairbinn's own. ``--mode`` takes several strategies to compare them on the
same network and data.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .core.config import FAIRNESS_GAP_METRICS, ORDERS, STRATEGY_NAMES, TrainConfig
from .core.constraints import list_constraints
from .core.fairness_layers import list_fairness_layers
from .core.metrics import REPORT_KEYS
from .core.runtime import DeviceNotAvailableError
from .core.trainer import TrainResult
from .tabular.experiment import TABULAR_DATASETS, load_tabular, run_tabular
from .tabular.preprocess import TabularDataset

MODE_ALIASES = {"reg": "lagrangian", "linear": "bilevel"}
"""The authors' ``--mode`` names: ``reg`` is the penalty (Lagrangian) method,
``linear`` their linear fairness layers trained as the follower (bilevel)."""

_COLUMNS = {
    "accuracy": "accuracy", "auc": "AUC", "ap": "AP", "dp": "DP", "eo": "EO",
    "eopp": "EOpp", "soft_dp": "soft DP", "soft_eo": "soft EO",
}


def _mode(value: str) -> str:
    name = MODE_ALIASES.get(value.lower(), value.lower())
    if name not in STRATEGY_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown mode {value!r}; use erm, lagrangian (alias reg) or bilevel (alias linear)"
        )
    return name


def _dataset(value: str) -> str:
    if value.lower() not in TABULAR_DATASETS:
        raise argparse.ArgumentTypeError(f"unknown dataset {value!r}; use Adult or Health")
    return value.lower()


def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    data = parser.add_argument_group("data")
    data.add_argument("-d", "--data", type=_dataset, default="adult", help="Adult or Health (default Adult)")
    data.add_argument("--data-dir", "--data_dir", dest="data_dir", default=None,
                      help="data directory (default $FAIRBINN_DATA, then ~/.cache/fairbinn)")

    game = parser.add_argument_group("training")
    game.add_argument("-m", "--mode", type=_mode, nargs="+", default=["bilevel"],
                      help="one or more of bilevel (alias linear), lagrangian (alias reg), erm; default bilevel")
    game.add_argument("-e", "--eta", type=float, default=defaults.eta, help="fairness weight (default 100)")
    game.add_argument("--constraint", default=defaults.constraint, choices=sorted(set(list_constraints())),
                      help="fairness loss (default dp)")
    game.add_argument("-ep", "--epochs", type=int, default=defaults.epochs)
    game.add_argument("-bs", "--batch_size", "--batch-size", dest="batch_size", type=int,
                      default=defaults.batch_size)
    game.add_argument("-nlr", "--network_learning_rate", "--lr", dest="lr", type=float, default=defaults.lr,
                      help="Adam learning rate of the accuracy player (default 1e-3)")
    game.add_argument("-flr", "--fairness_learning_rate", "--fairness-lr", dest="fairness_lr", type=float,
                      default=defaults.fairness_lr, help="Adam learning rate of the fairness layers (default 1e-5)")
    game.add_argument("--lr-decay", type=float, default=defaults.lr_decay, help="per-epoch decay of --lr")
    game.add_argument("--fairness-lr-decay", type=float, default=defaults.fairness_lr_decay)
    game.add_argument("--order", choices=[o.replace("_", "-") for o in ORDERS], default="follower-first",
                      help="bilevel update order (default follower-first, as the authors' code)")
    game.add_argument("--separate-batches", action="store_true",
                      help="bilevel: the follower draws its own minibatches")
    game.add_argument("--leader-penalty", action="store_true",
                      help="bilevel: the leader minimises BCE + eta * fairness, as the authors' released code "
                           "effectively does (default: BCE alone, as the paper)")
    game.add_argument("--select", default=defaults.selection_metric,
                      choices=["accuracy", "auc", "ap", *FAIRNESS_GAP_METRICS, "last"],
                      help="validation metric choosing the reported epoch, or 'last' (default accuracy)")
    game.add_argument("--seed", type=int, default=defaults.seed)
    game.add_argument("-dv", "--device", default=defaults.device, help="cpu, cuda, cuda:N, mps or auto")

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
    net.add_argument("--fairness-layer-type", default="linear", choices=list_fairness_layers())
    net.add_argument("--dropout", type=float, default=0.0)

    out = parser.add_argument_group("output")
    out.add_argument("-o", "--output", type=Path, help="write configuration, history and metrics as JSON")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fairbinn", description="Fairness-aware training with FairBiNN.")
    parser.add_argument("--version", action="version", version=f"fairbinn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser(
        "train", help="train and evaluate on Adult or Health",
        description="Train ERM, Lagrangian and/or bilevel (FairBiNN) models on a tabular benchmark "
                    "and print test metrics of the epoch selected on validation.",
    )
    _add_train_arguments(train)
    return parser


def model_kwargs(args: argparse.Namespace, data: TabularDataset) -> dict[str, Any]:
    """Translate the authors' network flags into :func:`~fairbinn.tabular.paper_mlp` arguments."""
    width = data.num_features
    kwargs: dict[str, Any] = {"fairness_layer": args.fairness_layer_type, "dropout": args.dropout}
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


def results_table(rows: list[tuple[str, TrainResult]]) -> str:
    """A plain-text table of test metrics, one row per (label, result)."""
    keys = [k for k in REPORT_KEYS if k != "eopp"]
    header = f"{'model':<22} {'epoch':>5}  " + "  ".join(f"{_COLUMNS[k]:>8}" for k in keys)
    lines = [header, "-" * len(header)]
    for label, result in rows:
        cells = "  ".join(f"{_format(result.test.get(k)):>8}" for k in keys)
        lines.append(f"{label:<22} {result.selected_epoch:>5}  {cells}")
    return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def train_command(args: argparse.Namespace) -> int:
    config = TrainConfig(
        eta=args.eta, constraint=args.constraint, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, fairness_lr=args.fairness_lr, lr_decay=args.lr_decay,
        fairness_lr_decay=args.fairness_lr_decay, order=args.order.replace("-", "_"),
        separate_batches=args.separate_batches, leader_penalty=args.leader_penalty,
        selection_metric=None if args.select == "last" else args.select,
        seed=args.seed, device=args.device, progress=not args.no_progress,
    )
    data = load_tabular(args.data, args.data_dir, seed=args.seed)
    kwargs = model_kwargs(args, data)
    runs = []
    for mode in dict.fromkeys(args.mode):
        result = run_tabular(data, config.replace(strategy=mode), model_kwargs=kwargs)
        name = "bilevel+penalty" if mode == "bilevel" and args.leader_penalty else mode
        runs.append((f"{name} (eta={args.eta:g})" if mode != "erm" else "erm", result))
    selection = f"validation {args.select}" if args.select != "last" else "last epoch"
    print(
        f"\n{data.name}: test metrics, {len(data.test)} rows, groups {data.group_names} "
        f"(seed {args.seed}, {args.epochs} epochs, epoch chosen by {selection})"
    )
    print(results_table(runs))
    print("DP/EO: demographic parity / equalized odds differences of thresholded predictions; "
          "soft: gaps of mean predicted probability.")
    if args.output:
        payload = {"command": ["fairbinn", *args.argv], "runs": [{"label": label, **r.to_dict()} for label, r in runs]}
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(_json_safe(payload), indent=2))
        print(f"wrote {args.output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv.insert(0, "train")  # the authors' scripts take flags without a sub-command
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return train_command(args)
    except (ValueError, FileNotFoundError, DeviceNotAvailableError, FloatingPointError) as error:
        parser.exit(2, f"fairbinn: error: {error}\n")


if __name__ == "__main__":
    raise SystemExit(main())
