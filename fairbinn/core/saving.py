"""Save a trained model with its configuration and metrics; load it back for prediction.

A model built by a function decorated with :func:`records_build` (the
package's ``build_mlp``, ``build_gnn`` and ``create_vision_model``) remembers
how it was built. :func:`save_model` writes three files into a directory:

- ``model.pt``: the ``state_dict``;
- ``model.json``: the builder (``module:function``) and its arguments, plus
  anything given as ``info`` (e.g. the dataset's feature and group names);
- ``config.json`` and ``metrics.json``: the training configuration and the
  metrics (validation and test of the chosen epoch), when given.

:func:`load_model` rebuilds the network with the recorded builder and loads
the weights, in evaluation mode. A saved model is data, safe to load from
anyone: ``model.pt`` is read with ``torch.load(weights_only=True)`` (tensors
only, never code), and the builder named in ``model.json`` is looked up among
the builders registered by :func:`records_build` (never imported by name).
Its arguments must fit its signature, and the network they describe is first
built on the ``meta`` device (no memory) and must have exactly the saved
parameters' names and shapes, before it is built for real.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
from torch import nn

from .checkpoint import load_tensors
from .postprocess import GroupThresholds, ThresholdedModel

__all__ = ["records_build", "registered_builders", "save_model", "load_model", "read_saved", "json_ready"]

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])
_FILES = ("model.pt", "model.json")

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
"""Builders :func:`load_model` may call, by ``"module:qualname"`` (filled by :func:`records_build`)."""

_PACKAGE_BUILDERS = {
    "fairbinn.tabular.mlp:build_mlp": "fairbinn.tabular.mlp",
    "fairbinn.graph.backbones:build_gnn": "fairbinn.graph.backbones",
    "fairbinn.vision.backbones:create_vision_model": "fairbinn.vision.backbones",
}
"""The package's own builders, whose modules (graph, vision) are imported on first use."""


def records_build(*, drop: tuple[str, ...] = ()) -> Callable[[Builder], Builder]:
    """Decorator for a model builder: the models it returns carry ``build_spec``, so they can be saved.

    ``build_spec`` is ``{"builder": "module:function", "args": [...], "kwargs":
    {...}}``, or None when an argument is not JSON data (a module object,
    say). Keyword arguments named in ``drop`` are recorded as None (e.g. a
    pretrained-weights path, which the saved state dict replaces), and
    :func:`load_model` refuses a ``model.json`` that sets them.

    The decorated builder is registered under its ``"module:function"``
    name: :func:`load_model` calls only registered builders. A builder of
    your own is registered when the module defining it is imported, so
    import it before loading a model it built.
    """

    def decorator(builder: Builder) -> Builder:
        name = f"{builder.__module__}:{builder.__qualname__}"

        @functools.wraps(builder)
        def build(*args: Any, **kwargs: Any) -> nn.Module:
            model = builder(*args, **kwargs)
            spec = {"builder": name, "args": list(args),
                    "kwargs": {k: (None if k in drop else v) for k, v in kwargs.items()}}
            try:
                model.build_spec = json.loads(json.dumps(spec))
            except TypeError:
                model.build_spec = None
            return model

        build.records_build = True
        build.dropped = tuple(drop)
        _BUILDERS[name] = build
        return build  # type: ignore[return-value]

    return decorator


def registered_builders() -> list[str]:
    """The ``"module:function"`` names :func:`load_model` can rebuild (the package's and those imported)."""
    return sorted({*_BUILDERS, *_PACKAGE_BUILDERS})


def json_ready(value: Any) -> Any:
    """``value`` ready for ``json.dumps``: non-finite floats (a metric a split cannot measure) become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def save_model(
    model: nn.Module,
    directory: str | os.PathLike,
    *,
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (and its ``config``, ``metrics`` and ``info``) into ``directory``; returns it.

    A :class:`~fairbinn.core.postprocess.ThresholdedModel` is saved as its
    network plus its thresholds (``info["thresholds"]``), which
    :func:`load_model` restores.

    Raises ``ValueError`` when the model does not know how it was built (not
    made by a :func:`records_build` builder, or built from objects that are
    not JSON data).
    """
    if isinstance(model, ThresholdedModel):  # the network's weights, and the thresholds as plain data
        info = {**(info or {}), "thresholds": model.thresholds.to_dict()}
        model = model.model
    spec = getattr(model, "build_spec", None)
    if spec is None:
        raise ValueError("this model does not record how it was built (build it with build_mlp, build_gnn or "
                         "create_vision_model from JSON-serialisable arguments, or decorate your builder with "
                         "fairbinn.core.saving.records_build); save its state_dict yourself")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), directory / "model.pt")
    (directory / "model.json").write_text(json.dumps(json_ready({**spec, "info": info or {}}), indent=2))
    for name, payload in (("config", config), ("metrics", metrics)):
        if payload is not None:
            (directory / f"{name}.json").write_text(json.dumps(json_ready(payload), indent=2))
    return directory


def read_saved(directory: str | os.PathLike) -> dict[str, Any]:
    """The JSON files of a saved model: ``{"model": ..., "config": ..., "metrics": ...}`` (those present)."""
    directory = Path(directory)
    missing = [name for name in _FILES if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory} holds no saved fairbinn model: missing {', '.join(missing)}")
    saved = {}
    for name in ("model", "config", "metrics"):
        path = directory / f"{name}.json"
        if path.is_file():
            try:
                saved[name] = json.loads(path.read_text())
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}: not valid JSON ({error})") from None
    return saved


def load_model(directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """The model saved in ``directory`` by :func:`save_model`, with its weights, in evaluation mode.

    Its ``build_spec`` is restored; the saved configuration and metrics are
    in :func:`read_saved`. Nothing in the directory is run as code:
    ``model.pt`` must hold tensors only (``torch.load(weights_only=True)``),
    the builder must be registered (:func:`records_build`; see
    :func:`registered_builders`), its arguments must fit its signature, and
    the network must have the saved parameters' names and shapes (checked
    on the ``meta`` device before any memory is allocated). Each problem is a
    ``ValueError`` naming the file.

    A model post-processed with per-group thresholds
    (:class:`~fairbinn.core.postprocess.ThresholdedModel`, saved with its
    thresholds in ``model.json``) comes back as one, so its
    ``predict(inputs, groups)`` gives the decisions it gave when saved.

    A tabular model saved with its fitted encoder (``info={"encoder":
    encoder.to_dict()}``, as ``fairbinn train --save`` does) comes back with
    it as ``model.table_encoder``, so that
    :func:`fairbinn.tabular.score_frame` scores raw rows exactly as training
    encoded them.
    """
    directory = Path(directory)
    spec = read_saved(directory)["model"]  # JSON: data whatever it holds
    weights, described = directory / "model.pt", directory / "model.json"
    state = load_tensors(weights, "fairbinn model state", map_location)
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise ValueError(f"{weights}: not a saved fairbinn model (expected a state_dict: parameter name -> tensor)")
    builder, args, kwargs = _recorded_build(spec, described)
    try:
        with torch.device("meta"):  # the shapes, without memory
            skeleton = builder(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the builder refused its arguments
        raise ValueError(f"{described}: {spec['builder']} cannot build a model from its arguments: {error}") from None
    _check_shapes(skeleton, state, described, weights)
    table_encoder = _recorded_table_encoder(spec, described)
    thresholds = _recorded_thresholds(spec, described)
    model = builder(*args, **kwargs)
    model.load_state_dict(state)
    if table_encoder is not None:
        model.table_encoder = table_encoder
    if thresholds is not None:
        model = ThresholdedModel(model, thresholds)
    return model.eval()


def _recorded_thresholds(spec: dict[str, Any], path: Path) -> GroupThresholds | None:
    """The per-group thresholds a post-processed model was saved with (``info["thresholds"]``); None if none."""
    info = spec.get("info")
    if not isinstance(info, dict) or info.get("thresholds") is None:
        return None
    try:
        return GroupThresholds.from_dict(info["thresholds"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: its 'info.thresholds' are not per-group thresholds: {error}") from None


def _recorded_table_encoder(spec: dict[str, Any], path: Path) -> Any:
    """The fitted :class:`~fairbinn.tabular.TabularEncoder` a tabular model was saved with (``info["encoder"]``,
    plain data), rebuilt; None when there is none."""
    info = spec.get("info")
    if not isinstance(info, dict) or info.get("encoder") is None:
        return None
    from ..tabular.preprocess import TabularEncoder  # tabular models only: the core does not import tabular

    try:
        return TabularEncoder.from_dict(info["encoder"])
    except ValueError as error:
        raise ValueError(f"{path}: its 'info.encoder' is not a fitted table encoder: {error}") from None


def _recorded_build(spec: Any, path: Path) -> tuple[Callable[..., nn.Module], list, dict[str, Any]]:
    """The registered builder and the arguments ``model.json`` (at ``path``) records, checked."""
    if not isinstance(spec, dict) or not isinstance(spec.get("builder"), str) \
            or not isinstance(spec.get("args", []), list) or not isinstance(spec.get("kwargs", {}), dict):
        raise ValueError(f"{path}: not a fairbinn model description (expected an object with a string "
                         "'builder', a list 'args' and an object 'kwargs')")
    name, args, kwargs = spec["builder"], spec.get("args", []), spec.get("kwargs", {})
    if name not in _BUILDERS and name in _PACKAGE_BUILDERS:
        importlib.import_module(_PACKAGE_BUILDERS[name])  # a fixed module of this package, never one from the file
    if name not in _BUILDERS:
        raise ValueError(f"{path}: {name!r} is not a registered fairbinn model builder (registered: "
                         f"{', '.join(registered_builders())}); a builder of your own is registered by importing "
                         "the module that decorates it with fairbinn.core.saving.records_build")
    builder = _BUILDERS[name]
    forbidden = [k for k in builder.dropped if kwargs.get(k) is not None]
    if forbidden:
        raise ValueError(f"{path}: {name} loads no {', '.join(forbidden)} here (a saved model's weights are in "
                         "model.pt); it must be null")
    try:
        inspect.signature(builder).bind(*args, **kwargs)
    except TypeError as error:
        raise ValueError(f"{path}: the arguments do not fit {name}{inspect.signature(builder)}: {error}") from None
    return builder, args, kwargs


def _check_shapes(model: nn.Module, state: dict[str, torch.Tensor], described: Path, weights: Path) -> None:
    """``model`` (built from ``described``) must have exactly the names and shapes of ``state`` (from ``weights``)."""
    built = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    saved = {name: tuple(value.shape) for name, value in state.items()}
    if built == saved:
        return
    missing, unexpected = sorted(set(built) - set(saved)), sorted(set(saved) - set(built))
    shapes = [f"{k}: {built[k]} built, {saved[k]} saved" for k in built if k in saved and built[k] != saved[k]]
    count = sum(math.prod(shape) for shape in built.values())
    problems = ([f"{len(missing)} not in {weights.name} ({', '.join(missing[:3])})"] if missing else []) \
        + ([f"{len(unexpected)} not built ({', '.join(unexpected[:3])})"] if unexpected else []) \
        + ([f"{len(shapes)} of another shape ({'; '.join(shapes[:3])})"] if shapes else [])
    raise ValueError(f"{described}: it describes a network ({count} values) that does not fit {weights}: "
                     + ", ".join(problems))
