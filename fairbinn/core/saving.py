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
the weights (``torch.load(weights_only=True)``), in evaluation mode.
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
from torch import nn

__all__ = ["records_build", "save_model", "load_model", "read_saved", "json_ready"]

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])
_FILES = ("model.pt", "model.json")


def records_build(*, drop: tuple[str, ...] = ()) -> Callable[[Builder], Builder]:
    """Decorator for a model builder: the models it returns carry ``build_spec``, so they can be saved.

    ``build_spec`` is ``{"builder": "module:function", "args": [...], "kwargs":
    {...}}``, or None when an argument is not JSON data (a module object,
    say). Keyword arguments named in ``drop`` are recorded as None (e.g. a
    pretrained-weights path, which the saved state dict replaces).
    """

    def decorator(builder: Builder) -> Builder:
        @functools.wraps(builder)
        def build(*args: Any, **kwargs: Any) -> nn.Module:
            model = builder(*args, **kwargs)
            spec = {"builder": f"{builder.__module__}:{builder.__qualname__}", "args": list(args),
                    "kwargs": {k: (None if k in drop else v) for k, v in kwargs.items()}}
            try:
                model.build_spec = json.loads(json.dumps(spec))
            except TypeError:
                model.build_spec = None
            return model

        build.records_build = True
        return build  # type: ignore[return-value]

    return decorator


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

    Raises ``ValueError`` when the model does not know how it was built (not
    made by a :func:`records_build` builder, or built from objects that are
    not JSON data).
    """
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
    in :func:`read_saved`.
    """
    directory = Path(directory)
    spec = read_saved(directory)["model"]
    module_name, _, qualname = str(spec.get("builder", "")).partition(":")
    try:
        builder = importlib.import_module(module_name)
        for part in qualname.split("."):
            builder = getattr(builder, part)
    except (ImportError, AttributeError, ValueError):
        raise ValueError(f"{directory / 'model.json'}: cannot find the builder {spec.get('builder')!r}") from None
    if not getattr(builder, "records_build", False):
        raise ValueError(f"{directory / 'model.json'}: {spec['builder']} is not a fairbinn model builder")
    model = builder(*spec["args"], **spec["kwargs"])
    state = torch.load(directory / "model.pt", map_location=map_location, weights_only=True)
    model.load_state_dict(state)
    return model.eval()
