import numpy as np
import pandas as pd
import pytest
import torch
from torch_geometric.utils import coalesce, contains_self_loops, is_undirected

from fairbinn.graph import POKEC_Z_STATS, GraphDataset, pokec_like_graph

N = 4000


@pytest.fixture(scope="module")
def graph() -> GraphDataset:
    return pokec_like_graph(N, seed=3)


def _degrees(dataset: GraphDataset) -> torch.Tensor:
    return torch.bincount(dataset.data.edge_index[0], minlength=dataset.data.num_nodes)


def test_shapes_types_and_pokec_width(graph):
    data = graph.data
    assert data.x.shape == (N, 276) and data.x.dtype == torch.float32
    assert graph.num_features == POKEC_Z_STATS["num_features"] == 276
    assert data.edge_index.dtype == torch.int64 and data.edge_index.shape[0] == 2
    assert data.y.dtype == torch.int64 and set(data.y.unique().tolist()) == {-1, 0, 1}
    assert set(data.sens.unique().tolist()) == {0, 1}
    assert graph.group_names == ["region=0", "region=1"] and graph.sensitive_attribute == "region"
    assert len(graph.feature_names) == 276


def test_width_matches_the_real_pokec_z_header(data_dir):
    header = data_dir / "pokec_sample" / "region_job.csv"
    if not header.is_file():
        pytest.skip(f"{header} not found")
    columns = pd.read_csv(header, nrows=0).columns
    features = [c for c in columns if c not in ("user_id", "I_am_working_in_field", "region")]
    assert len(features) == POKEC_Z_STATS["num_features"]


def test_edges_are_undirected_without_duplicates_or_self_loops(graph):
    edge_index = graph.data.edge_index
    assert is_undirected(edge_index, num_nodes=N)
    assert not contains_self_loops(edge_index)
    assert torch.equal(coalesce(edge_index, num_nodes=N), edge_index)  # sorted, no duplicates


def test_mean_degree_is_the_target(graph):
    mean = float(_degrees(graph).float().mean())
    assert mean == pytest.approx(POKEC_Z_STATS["avg_degree"], rel=0.01)
    assert graph.notes["undirected_edges"] == graph.notes["target_undirected_edges"] == round(N * 18.2 / 2)


def test_degrees_are_heavy_tailed(graph):
    degree = _degrees(graph).float()
    mean = float(degree.mean())
    # a Poisson graph of this mean degree has a maximum near 2 x the mean; a power law far beyond
    assert float(degree.max()) > 8 * mean
    top = degree.sort(descending=True).values
    top_share = float(top[: N // 100].sum() / top.sum())
    assert top_share > 0.08  # the top 1% of the nodes hold > 8% of the edge endpoints (Poisson: about 2%)
    assert float(degree.median()) < mean  # right-skewed


@pytest.mark.parametrize("homophily", [0.95, 0.7])
def test_within_region_edge_share_is_near_the_homophily_setting(homophily):
    dataset = pokec_like_graph(N, homophily=homophily, num_features=8, informative_features=4,
                               proxy_features=2, seed=1)
    sens, (src, dst) = dataset.data.sens, dataset.data.edge_index
    within = float((sens[src] == sens[dst]).float().mean())
    assert within == pytest.approx(homophily, abs=0.02)
    assert dataset.notes["within_region_edge_share"] == pytest.approx(within, abs=1e-4)


def test_regions_labels_and_splits(graph):
    data = graph.data
    assert float(data.sens.float().mean()) == pytest.approx(POKEC_Z_STATS["minority_share"], abs=0.01)
    labelled = data.y >= 0
    assert float(labelled.float().mean()) == pytest.approx(POKEC_Z_STATS["labelled_fraction"], abs=0.01)
    rates = [float(data.y[labelled & (data.sens == g)].float().mean()) for g in (0, 1)]
    assert rates[0] - rates[1] == pytest.approx(0.15, abs=0.08)  # label_bias: region 0 is favoured
    train, val, test = data.train_mask, data.val_mask, data.test_mask
    assert not (train & val).any() and not (train & test).any() and not (val & test).any()
    assert int(train.sum()) == min(500, int(labelled.sum()) // 2)  # FairGNN's budget
    assert bool(labelled[train | val | test].all())
    assert int(val.sum()) == pytest.approx(int(labelled.sum()) / 4, abs=2)


def test_label_number_none_trains_on_half_the_labelled_nodes():
    dataset = pokec_like_graph(1000, label_number=None, labelled_fraction=1.0, num_features=8,
                               informative_features=4, proxy_features=2)
    assert int(dataset.data.train_mask.sum()) == 500
    assert int((dataset.data.y >= 0).sum()) == 1000


def test_features_carry_the_label_and_the_region(graph):
    data, labelled = graph.data, graph.data.y >= 0
    x, y, s = data.x[labelled], data.y[labelled].float(), data.sens[labelled].float()

    def corr(a, b):
        return float(np.corrcoef(a.numpy(), b.numpy())[0, 1])

    assert corr(x[:, :16].mean(1), y) > 0.3  # informative columns
    assert corr(x[:, 16:24].mean(1), s) > 0.5  # region proxies
    assert abs(corr(x[:, 24:].mean(1), y)) < 0.1  # noise


def test_neighbours_carry_label_information(graph):
    """The label depends on the neighbours' latent scores, so aggregated neighbour features predict it."""
    data = graph.data
    informative = data.x[:, :16].mean(1)
    src, dst = data.edge_index
    total = torch.zeros(N).index_add_(0, src, informative[dst])
    around = total / torch.bincount(src, minlength=N).clamp(min=1)
    labelled = data.y >= 0
    corr = np.corrcoef(around[labelled].numpy(), data.y[labelled].float().numpy())[0, 1]
    assert corr > 0.2


def test_same_seed_same_graph_other_seed_other_graph():
    a, b, c = (pokec_like_graph(500, num_features=8, informative_features=4, proxy_features=2, seed=s)
               for s in (5, 5, 6))
    for key in ("x", "edge_index", "y", "sens", "train_mask"):
        assert torch.equal(a.data[key], b.data[key])
    assert not torch.equal(a.data.x, c.data.x) and not torch.equal(a.data.sens, c.data.sens)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_nodes=50), "num_nodes must be an integer >= 100"),
        (dict(degree_exponent=2.0), "degree_exponent must be > 2"),
        (dict(homophily=1.5), "homophily must be in"),
        (dict(num_features=10), "exceed num_features"),
        (dict(label_bias=0.5, positive_rate=0.8), "must stay inside"),
    ],
)
def test_bad_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pokec_like_graph(**{"num_nodes": 1000, **kwargs})
