"""Score raw table rows with a saved tabular model, encoded exactly as its training rows were."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .preprocess import TabularEncoder

__all__ = ["score_frame"]


def score_frame(model: nn.Module, frame: pd.DataFrame, encoder: TabularEncoder | None = None) -> np.ndarray:
    """Predicted probabilities of class 1 for the raw rows of ``frame``.

    Parameters
    ----------
    model : nn.Module
        A tabular model returning one logit per row, e.g. ``fairbinn.load_model(dir)`` of a
        ``fairbinn train --csv ... --save dir`` run, which carries its fitted encoder as
        ``model.table_encoder``.
    frame : DataFrame
        Raw rows with the feature columns the model was trained on (other columns are ignored).
    encoder : TabularEncoder, optional
        The fitted encoder; default ``model.table_encoder``.

    Returns
    -------
    ndarray of shape (n,), float64: ``sigmoid(model(encoder.transform(frame)))``.
    """
    encoder = encoder if encoder is not None else getattr(model, "table_encoder", None)
    if encoder is None:
        raise ValueError("this model carries no table encoder (it was saved without one): pass encoder=, the "
                         "TabularEncoder fitted on its training rows")
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame of raw rows, got {type(frame).__name__}")
    features = torch.from_numpy(encoder.transform(frame))
    parameter = next(model.parameters(), None)
    if parameter is not None:
        features = features.to(parameter.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            scores = torch.sigmoid(model(features).reshape(-1))
    finally:
        model.train(was_training)
    return scores.double().cpu().numpy()
