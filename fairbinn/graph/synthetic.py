"""A synthetic graph with Pokec-like statistics, for scaling tests and benchmarks.

The real Pokec-z / Pokec-n graphs (FairGNN's region subsets of the Slovak
social network Pokec) have about 67k nodes; the whole Pokec network has
1,632,803 users. :func:`pokec_like_graph` builds a graph of any size with the
properties that matter for training cost and for fairness:

* power-law degrees (Chung-Lu style: every node gets a Pareto weight and edge
  endpoints are drawn with probability proportional to it);
* two regions, the sensitive attribute, with a minority share like Pokec-z's
  and homophily: a fraction ``homophily`` of the edges join two nodes of the
  same region;
* a binary label that depends on a latent node score, on the neighbours'
  scores (so message passing helps) and on the region (so an unconstrained
  classifier is unfair);
* float32 features of Pokec-z's width (276), some carrying the node's own
  latent score, some the region (proxies of the sensitive attribute), the
  rest noise (Gaussian, not Pokec's 0/1 profile indicators);
* FairGNN's split of the labelled nodes (:func:`~fairbinn.graph.splits.fairgnn_split`).

Everything is vectorised (numpy / torch). On a 2-core machine, 1.6M nodes
(14.6M undirected edges) take about 14 s with a peak resident size of
5.9 GiB (0.7 GiB of it the imported libraries); the graph itself holds
2.1 GiB (features 1.6M x 276 float32 = 1.65 GiB, ``edge_index`` 0.43 GiB).
About 3 s and 2.8 GiB of the peak are :class:`GraphDataset`'s validation
(``torch.isfinite`` over the feature matrix); the generation alone peaks at
3.1 GiB.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch_geometric.data import Data

from .dataset import GraphDataset
from .splits import fairgnn_split

__all__ = ["POKEC_Z_STATS", "pokec_like_graph"]

POKEC_Z_STATS: dict[str, float] = dict(
    num_features=276,
    avg_degree=18.2,
    minority_share=0.25,
    homophily=0.95,
    labelled_fraction=0.15,
    label_number=500,
)
"""Pokec-z figures the generator's defaults follow.

* ``num_features`` 276: the columns of FairGNN's ``region_job.csv`` less
  ``user_id``, the label ``I_am_working_in_field`` and the sensitive attribute
  ``region`` (what :func:`~fairbinn.graph.load_pokec` uses as features).
* ``avg_degree`` 18.2: FairGNN's published size of Pokec-z, 67,797 nodes and
  617,958 edges, gives a mean undirected degree of 2 x 617,958 / 67,797 = 18.2.
  (Other sources count Pokec-z's edges differently; the whole SNAP Pokec
  network has 30,622,564 directed friendships on 1,632,803 users, 18.8 per user.)
* ``minority_share`` 0.25, ``labelled_fraction`` 0.15: the region shares and the
  share of nodes with a label (``I_am_working_in_field`` >= 0) in the
  ``region_job.csv`` sample (75 / 25 and 15.6 %).
* ``homophily`` 0.95: regions are geographic, so friendships mostly stay
  within one (98.7 % of the edges among the sample's nodes do; 0.95 leaves
  some cross-region edges for the fairness problem).
* ``label_number`` 500: FairGNN's training budget on Pokec.
"""


def _expected_degrees(
    n: int, exponent: float, mean: float, cap: float, rng: np.random.Generator
) -> np.ndarray:
    """Pareto expected degrees: ``P(w > t) ~ t^-(exponent - 1)``, mean ``mean``, none above ``cap``.

    Capping lowers the mean, so scaling and capping alternate a few times.
    """
    weights = (1.0 - rng.random(n)) ** (-1.0 / (exponent - 1.0))
    for _ in range(5):
        weights *= mean / weights.mean()
        np.minimum(weights, cap, out=weights)
    return weights


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sort ``values`` in place and return its distinct values (numpy's ``unique`` is much slower here)."""
    values.sort()
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def _draw(weights: np.ndarray, members: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` of ``members`` drawn with replacement, probability proportional to ``weights``, in random order.

    The number of draws of each member is multinomial; repeating the members
    that often and shuffling is the same distribution as ``count`` independent
    draws, and much faster than a binary search per draw on a large graph.
    """
    counts = rng.multinomial(count, weights / weights.sum())
    picks = np.repeat(members, counts)
    rng.shuffle(picks)
    return picks


def _edges(
    num_nodes: int,
    num_edges: int,
    weights: np.ndarray,
    sens: np.ndarray,
    homophily: float,
    rng: np.random.Generator,
    max_rounds: int = 8,
) -> np.ndarray:
    """``num_edges`` distinct undirected edges as sorted keys ``u * N + v`` with ``u < v``.

    Each edge draws its first endpoint from all nodes by weight, then with
    probability ``homophily`` its second endpoint from the same region (by
    weight within the region), otherwise from the other region. Self-loops and
    repeated pairs are dropped and drawn again (a few rounds; the shortfall,
    if any, is recorded by the caller).
    """
    every = np.arange(num_nodes, dtype=np.int64)
    members = [np.flatnonzero(sens == g) for g in (0, 1)]
    keys = np.empty(0, dtype=np.int64)
    for round_ in range(max_rounds):
        missing = num_edges - len(keys)
        if missing <= 0:
            break
        draw = missing if round_ == 0 else int(missing * 1.2) + 64
        u = _draw(weights, every, draw, rng)
        same = rng.random(draw) < homophily
        target_group = np.where(same, sens[u], 1 - sens[u])
        del same
        v = np.empty(draw, dtype=np.int64)
        for g in (0, 1):
            rows = np.flatnonzero(target_group == g)
            v[rows] = _draw(weights[members[g]], members[g], len(rows), rng)
        del target_group
        keep = u != v
        u, v = u[keep], v[keep]
        new = np.minimum(u, v) * np.int64(num_nodes) + np.maximum(u, v)
        del u, v, keep
        new = _sorted_unique(new)
        if len(keys):
            at = np.minimum(np.searchsorted(keys, new), len(keys) - 1)
            new = new[keys[at] != new]
        if len(new) > missing:
            new = np.sort(rng.choice(new, missing, replace=False))
        keys = np.concatenate([keys, new])
        keys.sort(kind="stable")  # two sorted runs: a merge
    return keys


def _symmetric_edge_index(keys: np.ndarray, num_nodes: int) -> torch.Tensor:
    """Both directions of each ``u < v`` key, sorted by source then target: ``(2, 2E)`` int64."""
    n = np.int64(num_nodes)
    low, high = np.divmod(keys, n)
    reverse = high * n + low
    del low, high
    reverse.sort()
    both = np.concatenate([keys, reverse])
    del reverse
    both.sort(kind="stable")  # two sorted runs: a merge
    out = np.empty((2, len(both)), dtype=np.int64)
    np.divmod(both, n, out=(out[0], out[1]))
    return torch.from_numpy(out)


def _neighbour_mean(values: torch.Tensor, edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Mean of ``values`` over each node's neighbours (0 for an isolated node)."""
    total = torch.zeros(num_nodes, dtype=values.dtype).index_add_(0, edge_index[0], values[edge_index[1]])
    count = torch.bincount(edge_index[0], minlength=num_nodes).clamp_(min=1)
    return total / count


def pokec_like_graph(
    num_nodes: int,
    *,
    num_features: int = 276,
    avg_degree: float = 18.2,
    homophily: float = 0.95,
    minority_share: float = 0.25,
    degree_exponent: float = 2.5,
    max_degree: float | None = None,
    neighbour_signal: float = 1.0,
    label_bias: float = 0.15,
    positive_rate: float = 0.5,
    informative_features: int = 16,
    proxy_features: int = 8,
    feature_signal: float = 0.5,
    labelled_fraction: float = 0.15,
    label_number: int | None = 500,
    seed: int = 0,
    name: str | None = None,
) -> GraphDataset:
    """A random graph with Pokec-like statistics (see the module docstring).

    Parameters
    ----------
    num_nodes : int
        ``N``, at least 100. Pokec-z has 67,797; the whole Pokec network 1,632,803.
    num_features : int, default 276
        ``d``, Pokec-z's feature width (see :data:`POKEC_Z_STATS`).
    avg_degree : float, default 18.2
        Target mean degree ``2 E / N`` (Pokec-z's, see :data:`POKEC_Z_STATS`);
        the graph has ``round(N * avg_degree / 2)`` undirected edges unless
        the degree cap leaves too few distinct pairs (recorded in ``notes``).
    homophily : float, default 0.95
        Probability that an edge joins two nodes of the same region.
    minority_share : float, default 0.25
        Share of the nodes in region 1 (Pokec-z's sample: about 0.25).
    degree_exponent : float, default 2.5
        ``gamma`` of the power-law tail ``P(degree = k) ~ k^-gamma`` (> 2, so
        the mean is finite); social networks have 2 to 3.
    max_degree : float, optional
        Cap on a node's expected degree; default ``sqrt(N * avg_degree)``,
        the usual structural cut-off of Chung-Lu graphs, which keeps repeated
        pairs rare.
    neighbour_signal : float, default 1.0
        Weight of the neighbours' mean latent score in a node's label score
        (0: the graph carries no label information beyond the features).
    label_bias : float, default 0.15
        Positive rate of region 0 minus that of region 1 (the label is unfair).
    positive_rate : float, default 0.5
        Overall share of positive labels (Pokec-z: about 0.5 of the labelled nodes).
    informative_features, proxy_features : int, default 16 and 8
        Feature columns that carry the node's own latent score (not its
        neighbours'), and columns that carry the region; the other columns
        are noise.
    feature_signal : float, default 0.5
        Loading of the informative and proxy columns (each column is
        ``loading * signal + N(0, 1)`` noise).
    labelled_fraction : float, default 0.15
        Share of nodes with a label; the others get ``y = -1`` (Pokec-z: 0.156).
    label_number : int or None, default 500
        FairGNN's training budget (:func:`~fairbinn.graph.splits.fairgnn_split`):
        at most this many training nodes; ``None`` trains on half of the
        labelled nodes. Validation and test are the third and fourth quarters
        of the shuffled labelled nodes, as in FairGNN.
    seed : int, default 0
        Seeds every draw (weights, edges, scores, features, split).
    name : str, optional
        Default ``"pokec_like_<N>"``.

    Returns
    -------
    GraphDataset
        ``x`` ``(N, d)`` float32; ``edge_index`` ``(2, 2E)`` int64, undirected
        (both directions, sorted by source, no duplicates or self-loops);
        ``y`` ``(N,)`` int64 in {-1, 0, 1}; ``sens`` ``(N,)`` int64 in {0, 1}
        (region); boolean ``train_mask``, ``val_mask``, ``test_mask`` ``(N,)``,
        disjoint. ``notes`` holds the settings and the realised statistics:
        undirected edges, mean and maximum degree, within-region edge share,
        positive rate per region, and the generation time.
    """
    start = time.perf_counter()
    if not isinstance(num_nodes, int) or num_nodes < 100:
        raise ValueError(f"num_nodes must be an integer >= 100, got {num_nodes!r}")
    if not isinstance(num_features, int) or num_features < 1:
        raise ValueError(f"num_features must be a positive integer, got {num_features!r}")
    if informative_features + proxy_features > num_features:
        raise ValueError(
            f"informative_features + proxy_features ({informative_features} + {proxy_features}) "
            f"exceed num_features ({num_features})"
        )
    if not 0 < avg_degree < num_nodes - 1:
        raise ValueError(f"avg_degree must be in (0, num_nodes - 1), got {avg_degree!r}")
    if not 0 <= homophily <= 1:
        raise ValueError(f"homophily must be in [0, 1], got {homophily!r}")
    if not 0 < minority_share < 1:
        raise ValueError(f"minority_share must be in (0, 1), got {minority_share!r}")
    if degree_exponent <= 2:
        raise ValueError(f"degree_exponent must be > 2 (finite mean degree), got {degree_exponent!r}")
    if not 0 < labelled_fraction <= 1:
        raise ValueError(f"labelled_fraction must be in (0, 1], got {labelled_fraction!r}")
    low_rate, high_rate = positive_rate - label_bias / 2, positive_rate + label_bias / 2
    if not (0 < low_rate and high_rate < 1):
        raise ValueError(
            f"positive_rate {positive_rate} +- label_bias / 2 ({label_bias / 2}) must stay inside (0, 1)"
        )
    rng = np.random.default_rng(seed)
    torch_rng = torch.Generator().manual_seed(seed)
    n = num_nodes

    # regions: a random minority_share of the nodes in region 1, at least 2 nodes in each
    minority = min(max(2, round(minority_share * n)), n - 2)
    sens_np = np.zeros(n, dtype=np.int64)
    sens_np[rng.choice(n, minority, replace=False)] = 1

    # power-law expected degrees, scaled to the target mean
    cap = math.sqrt(n * avg_degree) if max_degree is None else float(max_degree)
    weights = _expected_degrees(n, degree_exponent, avg_degree, cap, rng)
    num_edges = round(n * avg_degree / 2)
    keys = _edges(n, num_edges, weights, sens_np, homophily, rng)
    del weights
    edge_index = _symmetric_edge_index(keys, n)
    del keys
    sens = torch.from_numpy(sens_np)

    # labels: own latent score + neighbours' mean score (standardised), thresholded per region at the
    # target rates; the features carry only the node's own score, so message passing adds information
    latent = torch.randn(n, generator=torch_rng)
    around = _neighbour_mean(latent, edge_index, n)
    score = latent + neighbour_signal * around / around.std().clamp(min=1e-12)
    del around
    y = torch.empty(n, dtype=torch.int64)
    rates = {0: high_rate, 1: low_rate}
    for g, rate in rates.items():
        rows = (sens == g).nonzero().squeeze(1)
        threshold = np.quantile(score[rows].numpy(), 1 - rate)
        y[rows] = (score[rows] > float(threshold)).long()

    # features: noise, plus the latent score in `informative` columns and the region in `proxy` columns
    x = torch.empty(n, num_features, dtype=torch.float32)
    informative = slice(0, informative_features)
    proxy = slice(informative_features, informative_features + proxy_features)
    region_sign = sens.float() * 2 - 1
    chunk = max(1, (1 << 24) // num_features)  # 64 MB of float32 at a time
    for begin in range(0, n, chunk):
        rows = slice(begin, min(n, begin + chunk))
        block = x[rows]
        block.normal_(generator=torch_rng)
        block[:, informative] += feature_signal * latent[rows, None]
        block[:, proxy] += feature_signal * region_sign[rows, None]

    # FairGNN's split of a random labelled_fraction of the nodes (its per-region check needs both groups)
    labelled_count = max(4, round(labelled_fraction * n))
    labelled = np.sort(rng.choice(n, labelled_count, replace=False))
    unlabelled = np.ones(n, dtype=bool)
    unlabelled[labelled] = False
    y[torch.from_numpy(unlabelled)] = -1
    budget = len(labelled) if label_number is None else label_number
    masks = []
    for part in fairgnn_split(labelled, label_number=budget, seed=seed):
        mask = torch.zeros(n, dtype=torch.bool)
        mask[torch.from_numpy(part)] = True
        masks.append(mask)

    degree = torch.bincount(edge_index[0], minlength=n)
    region = sens.bool()
    within = float((region[edge_index[0]] == region[edge_index[1]]).float().mean()) if edge_index.numel() else math.nan
    labelled_y, labelled_s = y[y >= 0], sens[y >= 0]
    notes = {
        "generator": "fairbinn.graph.pokec_like_graph",
        "settings": dict(
            num_nodes=n, num_features=num_features, avg_degree=avg_degree, homophily=homophily,
            minority_share=minority_share, degree_exponent=degree_exponent, max_degree=cap,
            neighbour_signal=neighbour_signal, label_bias=label_bias, positive_rate=positive_rate,
            informative_features=informative_features, proxy_features=proxy_features,
            feature_signal=feature_signal, labelled_fraction=labelled_fraction, label_number=label_number,
            seed=seed,
        ),
        "undirected_edges": int(edge_index.shape[1]) // 2,
        "target_undirected_edges": num_edges,
        "mean_degree": round(float(degree.float().mean()), 3),
        "max_degree": int(degree.max()),
        "isolated_nodes": int((degree == 0).sum()),
        "within_region_edge_share": round(within, 4),
        "positive_rate_by_region": [
            round(float(labelled_y[labelled_s == g].float().mean()), 4) for g in (0, 1)
        ],
        "generation_time_s": None,
    }
    data = Data(x=x, edge_index=edge_index, y=y, sens=sens,
                train_mask=masks[0], val_mask=masks[1], test_mask=masks[2])
    feature_names = (
        [f"informative_{j}" for j in range(informative_features)]
        + [f"region_proxy_{j}" for j in range(proxy_features)]
        + [f"noise_{j}" for j in range(num_features - informative_features - proxy_features)]
    )
    dataset = GraphDataset(
        name=name or f"pokec_like_{n}", data=data, feature_names=feature_names,
        group_names=["region=0", "region=1"], label="synthetic I_am_working_in_field",
        sensitive_attribute="region", notes=notes,
    )
    notes["generation_time_s"] = round(time.perf_counter() - start, 3)  # GraphDataset's checks included
    return dataset
