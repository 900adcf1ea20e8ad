"""NIFTY-format graphs (Bail): the loader against an independent re-implementation of NIFTY's own steps."""

import os
import random

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.utils import contains_self_loops, is_undirected

from fairbinn.benchmark import get_benchmark
from fairbinn.download import DOWNLOADS
from fairbinn.graph import load_bail, load_graph, load_nifty_graph, nifty_split

TOY = dict(label="RECID", sensitive="WHITE", label_number=10)


def nifty_reference(csv, edges_path, sens_attr, predict_attr, label_number):
    """NIFTY's load_bail (utils.py) and the normalisation of nifty_sota_gnn.py, step by step as NIFTY does them.

    Returns features, the set of adjacency entries (self-loops included, as NIFTY's adj + sp.eye) and the
    train / val / test indices.
    """
    idx_features_labels = pd.read_csv(csv)
    header = list(idx_features_labels.columns)
    header.remove(predict_attr)
    edges_unordered = np.genfromtxt(edges_path).astype("int")
    features = sp.csr_matrix(idx_features_labels[header], dtype=np.float32)
    labels = idx_features_labels[predict_attr].values.copy()  # (a writable copy: torch warns otherwise)
    idx = np.arange(features.shape[0])
    idx_map = {j: i for i, j in enumerate(idx)}
    edges = np.array(list(map(idx_map.get, edges_unordered.flatten())), dtype=int).reshape(edges_unordered.shape)
    adj = sp.coo_matrix((np.ones(edges.shape[0]), (edges[:, 0], edges[:, 1])),
                        shape=(labels.shape[0], labels.shape[0]), dtype=np.float32)
    adj = adj + adj.T.multiply(adj.T > adj) - adj.multiply(adj.T > adj)
    adj = adj + sp.eye(adj.shape[0])
    features = torch.FloatTensor(np.array(features.todense()))
    labels = torch.LongTensor(labels)
    state = random.getstate()
    random.seed(20)
    label_idx_0 = np.where(labels == 0)[0]
    label_idx_1 = np.where(labels == 1)[0]
    random.shuffle(label_idx_0)
    random.shuffle(label_idx_1)
    random.setstate(state)
    idx_train = np.append(label_idx_0[:min(int(0.5 * len(label_idx_0)), label_number // 2)],
                          label_idx_1[:min(int(0.5 * len(label_idx_1)), label_number // 2)])
    idx_val = np.append(label_idx_0[int(0.5 * len(label_idx_0)):int(0.75 * len(label_idx_0))],
                        label_idx_1[int(0.5 * len(label_idx_1)):int(0.75 * len(label_idx_1))])
    idx_test = np.append(label_idx_0[int(0.75 * len(label_idx_0)):], label_idx_1[int(0.75 * len(label_idx_1)):])
    # nifty_sota_gnn.py: feature_norm, then the sensitive column put back
    sens_idx = header.index(sens_attr)
    min_values = features.min(axis=0)[0]
    max_values = features.max(axis=0)[0]
    norm_features = 2 * (features - min_values).div(max_values - min_values) - 1
    norm_features[:, sens_idx] = features[:, sens_idx]
    coo = adj.tocoo()
    entries = set(zip(coo.row[coo.data != 0].tolist(), coo.col[coo.data != 0].tolist()))
    return norm_features, entries, (idx_train, idx_val, idx_test)


def assert_matches_nifty(dataset, csv, edges, label_number):
    features, entries, split = nifty_reference(csv, edges, "WHITE", "RECID", label_number)
    data = dataset.data
    assert torch.equal(data.x, features)  # to the bit: NIFTY's float32 arithmetic
    ours = set(map(tuple, data.edge_index.t().tolist())) | {(i, i) for i in range(data.num_nodes)}
    assert ours == entries
    for mask, indices in zip((data.train_mask, data.val_mask, data.test_mask), split):
        assert torch.equal(mask.nonzero().squeeze(1), torch.as_tensor(np.sort(indices)))
    assert torch.equal(data.y, torch.as_tensor(pd.read_csv(csv)["RECID"].to_numpy()))


def write_nifty(folder, *, rows=None, edges=None, seed=0, n=30):
    """A tiny NIFTY-style graph: bail.csv (no id column) and bail_edges.txt written by np.savetxt as NIFTY does."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({
        "WHITE": np.arange(n) % 2,
        "AGE": rng.integers(200, 800, n),
        "PRIORS": rng.integers(0, 9, n),
        "RECID": (np.arange(n) % 3 == 0).astype(int),
        "TIME": rng.normal(size=n).round(3),
    }) if rows is None else rows
    folder.mkdir(parents=True, exist_ok=True)
    csv, txt = folder / "bail.csv", folder / "bail_edges.txt"
    table.to_csv(csv, index=False)
    if edges is None:
        # a ring without node n-1 (isolated), a duplicate, a reversed duplicate and a self-loop
        edges = [(i, i + 1) for i in range(n - 2)] + [(0, 1), (5, 4), (7, 7), (3, 20)]
    if isinstance(edges, str):
        txt.write_text(edges)
    else:
        np.savetxt(txt, np.asarray(edges, dtype=float))
    return csv, txt


def test_toy_graph_is_niftys(tmp_path):
    csv, txt = write_nifty(tmp_path)
    assert txt.read_text().startswith("0.000000000000000000e+00 1.000000000000000000e+00")
    dataset = load_nifty_graph(csv, txt, **TOY)
    assert_matches_nifty(dataset, csv, txt, label_number=10)
    data = dataset.data
    assert is_undirected(data.edge_index) and not contains_self_loops(data.edge_index)
    assert dataset.feature_names == ["WHITE", "AGE", "PRIORS", "TIME"]  # the sensitive column is a feature
    assert data.x[:, 0].tolist() == (np.arange(30) % 2).tolist()  # ... kept 0/1
    assert dataset.notes == {
        "features": "min-max scaled to [-1, 1] over all nodes except the sensitive column 'WHITE'",
        "edges_in_file": 32, "self_loops_in_file": 1, "undirected_edges": 29, "isolated_nodes": 1,
    }
    assert dataset.group_names == ["WHITE=0", "WHITE=1"] and not dataset.val_is_test


def test_nifty_split_per_label():
    labels = np.r_[np.zeros(40, int), np.ones(20, int)]
    train, val, test = nifty_split(labels, label_number=10)
    assert (len(train), len(val), len(test)) == (10, 15, 15)
    assert labels[train].tolist() == [0] * 5 + [1] * 5
    assert not set(train) & set(val) and not set(val) & set(test) and not set(train) & set(test)
    assert (labels[val] == 0).sum() == 10 and (labels[test] == 0).sum() == 10
    again = nifty_split(labels, label_number=10)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    with pytest.raises(ValueError, match="label_number"):
        nifty_split(labels, label_number=1)


def test_features_argument_and_no_normalisation(tmp_path):
    csv, txt = write_nifty(tmp_path)
    raw = load_nifty_graph(csv, txt, **TOY, normalize_features=False, features=["AGE", "PRIORS"])
    assert raw.feature_names == ["AGE", "PRIORS"]
    assert raw.data.x[:, 0].tolist() == pd.read_csv(csv)["AGE"].astype(float).tolist()
    with pytest.raises(ValueError, match="label column 'RECID' cannot also be a feature"):
        load_nifty_graph(csv, txt, **TOY, features=["AGE", "RECID"])


@pytest.mark.parametrize(
    "edges, message",
    [
        ("0 1\n1 2\n3\n", r"bail_edges\.txt, line 3: expected two node row numbers separated by whitespace, found 1"),
        ("0 1\n1.5 2\n", r"bail_edges\.txt, line 2: expected two integer node row numbers .* got '1\.5'"),
        ("0 1\n\n1 x\n", r"bail_edges\.txt, line 3: expected two integer node row numbers .* got 'x'"),
        ("0.0e+00 1.0e+00\n2.9e+01 3.0e+01\n", r"bail_edges\.txt, line 2: node 30 is not a row of the node table, "
                                               r"which has 30 rows"),
        ("0 1\n-1 2\n", r"bail_edges\.txt, line 2: node -1 is not a row"),
        ("0,1\n", r"bail_edges\.txt, line 1: .* the line looks ','-separated"),
        ("", r"bail_edges\.txt: expected one edge per line .* the file has none"),
        ("\n\n", r"bail_edges\.txt: expected one edge per line"),
        ("3 3\n4.0 4.0\n", r"bail_edges\.txt: expected edges between distinct nodes, found only 2 self-loop"),
    ],
)
def test_bad_edge_files_name_the_file_and_line(tmp_path, edges, message):
    csv, txt = write_nifty(tmp_path, edges=edges)
    with pytest.raises(ValueError, match=message):
        load_nifty_graph(csv, txt, **TOY)


def _table(**changes):
    n = 30
    table = pd.DataFrame({"WHITE": np.arange(n) % 2, "AGE": np.arange(n) * 10, "RECID": np.arange(n) % 3 == 0})
    table["RECID"] = table["RECID"].astype(int)
    for column, value in changes.items():
        if value is None:
            table = table.drop(columns=column)
        else:
            table[column] = value
    return table


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(RECID=None), r"bail\.csv.*'RECID'"),
        (dict(WHITE=None), r"bail\.csv.*'WHITE'"),
        (dict(RECID=np.arange(30) % 3), r"bail\.csv, line 4: expected 0 or 1 in column 'RECID' .* got 2"),
        (dict(WHITE=np.where(np.arange(30) == 6, -1, np.arange(30) % 2)),
         r"bail\.csv, line 8: expected 0 or 1 in column 'WHITE' .* got -1"),
    ],
)
def test_bad_node_tables_name_the_file(tmp_path, changes, message):
    csv, txt = write_nifty(tmp_path, rows=_table(**changes), edges=[(0, 1), (1, 2)])
    with pytest.raises(ValueError, match=message):
        load_nifty_graph(csv, txt, **TOY)


def test_bail_is_a_registered_downloadable_benchmark():
    benchmark = get_benchmark("Bail")
    assert benchmark.name == "bail" and benchmark.modality == "graph"
    source = DOWNLOADS["bail"]
    assert [(f.name, f.size) for f in source.files] == [("bail.csv", 820_405), ("bail_edges.txt", 20_198_850)]
    assert all(f.url.startswith("https://raw.githubusercontent.com/chirag126/nifty/") for f in source.files)
    assert benchmark.paper_config(None).lr == 1e-3


def test_missing_bail_files_name_what_is_expected(tmp_path):
    from fairbinn.core.datadir import DataFilesNotFoundError

    with pytest.raises(DataFilesNotFoundError, match=r"expected bail\.csv \+ bail_edges\.txt"):
        load_graph("bail", tmp_path)


# ---- the real files -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bail(data_dir):
    if not (data_dir / "bail" / "bail.csv").is_file():
        message = f"Bail not found in {data_dir / 'bail'}"
        if os.environ.get("FAIRBINN_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return load_bail(data_dir)


def test_bail_is_niftys_published_setting(bail, data_dir):
    assert_matches_nifty(bail, data_dir / "bail" / "bail.csv", data_dir / "bail" / "bail_edges.txt", 100)
    data = bail.data
    assert (data.num_nodes, bail.num_features) == (18876, 18)
    assert bail.notes["published_files"] == "verified (size and sha256)"
    assert bail.notes["edges_in_file"] == 403977 and bail.notes["isolated_nodes"] == 0
    assert [int(m.sum()) for m in (data.train_mask, data.val_mask, data.test_mask)] == [100, 4719, 4719]
    assert data.y[data.train_mask].sum() == 50
    assert bail.feature_names[0] == "WHITE" and set(data.x[:, 0].tolist()) == {0.0, 1.0}
