import json

import pytest
import torch
from torch import nn

import fairbinn
from fairbinn.core.saving import load_model, read_saved, save_model
from synthetic import make_biased_split


def test_a_trained_mlp_round_trips_with_its_config_and_metrics(tmp_path):
    train, val = make_biased_split(300, 0), make_biased_split(100, 1, name="val")
    torch.manual_seed(0)
    model = fairbinn.build_mlp(6, (8, 8), num_fairness_layers=2, fairness_layer="residual")
    result = fairbinn.Trainer(strategy="lagrangian", eta=1.0, epochs=2, progress=False).fit(model, train, val)
    save_model(model, tmp_path / "saved", config=result.config,
               metrics={"val": {**result.val, "dp": float("nan")}}, info={"groups": ["a", "b"]})
    loaded = load_model(tmp_path / "saved")
    assert not loaded.training and type(loaded) is type(model)
    model.eval()
    with torch.inference_mode():
        assert torch.equal(loaded(val.x), model(val.x))
    saved = read_saved(tmp_path / "saved")
    assert saved["config"]["strategy"] == "lagrangian" and saved["config"]["eta"] == 1.0
    assert saved["metrics"]["val"]["dp"] is None  # NaN is written as null, never as a number
    assert saved["model"]["builder"] == "fairbinn.tabular.mlp:build_mlp"
    assert saved["model"]["info"] == {"groups": ["a", "b"]}


def test_models_that_cannot_be_rebuilt_are_refused(tmp_path):
    plain = fairbinn.FairModel(nn.Linear(3, 3), nn.Linear(3, 1), nn.Linear(3, 3))
    with pytest.raises(ValueError, match="does not record how it was built"):
        save_model(plain, tmp_path / "plain")
    with pytest.raises(FileNotFoundError, match="holds no saved fairbinn model: missing model.pt, model.json"):
        load_model(tmp_path)
    model = fairbinn.build_mlp(4, (4,))
    save_model(model, tmp_path / "m")
    spec = json.loads((tmp_path / "m" / "model.json").read_text())
    (tmp_path / "m" / "model.json").write_text(json.dumps({**spec, "builder": "os:system"}))
    with pytest.raises(ValueError, match=r"model.json: 'os:system' is not a registered fairbinn model builder "
                                         r"\(registered: .*fairbinn.tabular.mlp:build_mlp"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text(json.dumps({**spec, "builder": "fairbinn.nothing:here"}))
    with pytest.raises(ValueError, match="'fairbinn.nothing:here' is not a registered fairbinn model builder"):
        load_model(tmp_path / "m")
