import warnings

import numpy as np
import pytest
import torch
from torch_geometric.utils import contains_self_loops, is_undirected

from fairbinn.core.datadir import DataFilesNotFoundError
from fairbinn.graph import fairgnn_split, load_fairgnn_graph, load_graph, load_nba, load_pokec

from fairgnn_fixtures import write_graph

TOY = dict(label="target", sensitive="group", label_number=10)


def test_toy_graph_labels_groups_features_and_edges(tmp_path):
    nodes, edges = write_graph(tmp_path, edges=[(1000, 1001), (1001, 1000), (1002, 1002), (1003, 1005)])
    data = load_fairgnn_graph(nodes, edges, **TOY).data
    # labels cycle -1, 0, 1, 2: unlabelled, then 0, 1 and 2 binarised to 1
    assert data.y[:8].tolist() == [-1, 0, 1, 1, -1, 0, 1, 1]
    assert data.sens[:4].tolist() == [0, 1, 0, 1]
    assert data.x.shape == (40, 2)  # f_a and f_b; id, label and group are not features
    # (1000, 1001) twice merges into one undirected edge; the self-loop is removed
    assert data.edge_index.t().tolist() == [[0, 1], [1, 0], [3, 5], [5, 3]]
    assert is_undirected(data.edge_index) and not contains_self_loops(data.edge_index)


def test_toy_graph_split_masks(tmp_path):
    nodes, edges = write_graph(tmp_path)
    dataset = load_fairgnn_graph(nodes, edges, **TOY)
    data = dataset.data
    labelled = (data.y >= 0).sum().item()
    assert labelled == 30
    assert [int(m.sum()) for m in (data.train_mask, data.val_mask, data.test_mask)] == [10, 7, 8]
    for mask in (data.train_mask, data.val_mask, data.test_mask):
        assert (data.y[mask] >= 0).all()
    assert dataset.notes["unlabelled_nodes"] == 10


def test_normalisation_is_fairgnn_min_max(tmp_path):
    nodes, edges = write_graph(tmp_path)
    raw = load_fairgnn_graph(nodes, edges, **TOY).data.x
    scaled = load_fairgnn_graph(nodes, edges, **TOY, normalize_features=True).data.x
    low, high = raw.min(0).values, raw.max(0).values
    torch.testing.assert_close(scaled, 2 * (raw - low) / (high - low) - 1)


def test_feature_and_column_arguments(tmp_path):
    nodes, edges = write_graph(tmp_path)
    data = load_fairgnn_graph(nodes, edges, **TOY, features=["f_b"]).data
    assert data.x.shape == (40, 1)
    with_sens = load_fairgnn_graph(nodes, edges, **TOY, keep_sensitive_feature=True)
    assert with_sens.feature_names == ["f_a", "f_b", "group"]
    with pytest.raises(ValueError, match="no column 'salary'"):
        load_fairgnn_graph(nodes, edges, label="salary", sensitive="group", label_number=10)
    with pytest.raises(ValueError, match=r"feature column\(s\) \['nope'\] not found"):
        load_fairgnn_graph(nodes, edges, **TOY, features=["nope"])


def test_dropped_edges_are_counted(tmp_path):
    nodes, edges = write_graph(tmp_path, edges=[(1000, 1001), (1000, 7), (8, 9)])
    with pytest.warns(UserWarning, match="dropped 2 of 3 edges"):
        dataset = load_fairgnn_graph(nodes, edges, **TOY)
    assert dataset.notes["edges_dropped_unknown_node"] == 2
    assert dataset.data.edge_index.shape == (2, 2)


def test_unknown_groups_are_left_out_of_the_splits(tmp_path):
    sens = np.arange(40) % 2
    sens[[1, 2, 3]] = -1
    nodes, edges = write_graph(tmp_path, sens=sens)
    dataset = load_fairgnn_graph(nodes, edges, **TOY)
    data = dataset.data
    split_nodes = data.train_mask | data.val_mask | data.test_mask
    assert not split_nodes[[1, 2, 3]].any()
    assert dataset.notes["unknown_group_nodes"] == 3
    drawn = np.concatenate(fairgnn_split(np.flatnonzero(np.arange(40) % 4 != 0), label_number=10))
    assert dataset.notes["split_nodes_without_group"] == len(set(drawn) & {1, 2, 3}) > 0


def test_bad_graphs_give_clear_errors(tmp_path):
    nodes, edges = write_graph(tmp_path / "dup", ids=np.r_[np.arange(1000, 1039), 1000])
    with pytest.raises(ValueError, match="duplicate node id"):
        load_fairgnn_graph(nodes, edges, **TOY)
    nodes, edges = write_graph(tmp_path / "one", sens=np.zeros(40, dtype=int))
    with pytest.raises(ValueError, match=r"single group \(\[0\]\) among the labelled nodes"):
        load_fairgnn_graph(nodes, edges, **TOY)
    nodes, edges = write_graph(tmp_path / "gone")
    edges.unlink()
    with pytest.raises(FileNotFoundError, match="toy_relationship.txt"):
        load_fairgnn_graph(nodes, edges, **TOY)


def test_missing_benchmark_files_name_what_is_expected(tmp_path):
    with pytest.raises(DataFilesNotFoundError, match=r"expected region_job\.csv \+ region_job_relationship\.txt"):
        load_pokec("z", tmp_path)
    (tmp_path / "nba").mkdir()
    (tmp_path / "nba" / "nba.csv").write_text("user_id\n1\n")
    with pytest.raises(DataFilesNotFoundError, match="nba_relationship.txt"):
        load_nba(tmp_path)
    with pytest.raises(ValueError, match="unknown graph dataset 'cora'"):
        load_graph("cora", tmp_path)


# ---- the real files -------------------------------------------------------------------------


def test_nba_published_protocol(data_dir):
    dataset = load_nba(data_dir)
    data = dataset.data
    assert (data.num_nodes, dataset.num_features) == (403, 95)
    assert dataset.notes["edges_in_file"] == 16570 and dataset.notes["edges_dropped_unknown_node"] == 0
    assert is_undirected(data.edge_index) and not contains_self_loops(data.edge_index)
    assert dataset.notes["unlabelled_nodes"] == 90
    # 313 labelled nodes: the first 100 shuffled train, the other 213 test and validation at once
    assert int(data.train_mask.sum()) == 100 and int(data.test_mask.sum()) == 213
    assert dataset.val_is_test and torch.equal(data.val_mask, data.test_mask)
    assert not (data.train_mask & data.test_mask).any()
    assert data.x.min() == -1 and data.x.max() == 1
    assert dataset.group_names == ["country=0", "country=1"]


def test_nba_disjoint_validation(data_dir):
    data = load_nba(data_dir, test_as_val=False).data
    assert [int(m.sum()) for m in (data.train_mask, data.val_mask, data.test_mask)] == [100, 78, 79]
    assert not (data.val_mask & data.test_mask).any()


@pytest.mark.parametrize("variant, nodes, dropped, kept", [("z", 3219, 153029, 5822), ("n", 3341, 135232, 337)])
def test_truncated_pokec_sample_loads_with_warnings(data_dir, variant, nodes, dropped, kept):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = load_pokec(variant, data_dir, folder="pokec_sample")
    messages = " | ".join(str(w.message) for w in caught)
    assert "are not the published ones" in messages
    assert f"dropped {dropped} of {dropped + kept} edges" in messages
    assert dataset.data.num_nodes == nodes
    assert dataset.notes["published_files"].startswith("differ:")
    assert set(dataset.data.y[dataset.data.train_mask].tolist()) == {0, 1}
    assert dataset.group_names == ["region=0", "region=1"]
