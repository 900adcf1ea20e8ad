import pytest
import torch
from torch_geometric.utils import coalesce

from fairbinn.graph.sparse_products import Pattern, pattern_dot, pattern_matmul


def _pattern(n=12, e=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    edges = coalesce(torch.randint(0, n, (2, e), generator=g), num_nodes=n)  # sorted by row, then column
    return Pattern(edges[0], edges[1], n), edges


def _dense(edges, values, n):
    return torch.zeros(n, n, dtype=values.dtype).index_put((edges[0], edges[1]), values)


@pytest.mark.parametrize("transpose", [False, True])
def test_the_product_and_its_derivatives_are_the_dense_matrixs(transpose):
    pattern, edges = _pattern()
    g = torch.Generator().manual_seed(1)
    values = torch.randn(edges.shape[1], generator=g, dtype=torch.float64, requires_grad=True)
    x = torch.randn(12, 3, generator=g, dtype=torch.float64, requires_grad=True)

    def dense(values, x):
        a = _dense(edges, values, 12)
        return (a.t() if transpose else a) @ x

    def sparse(values, x):
        return pattern_matmul(pattern, values, x, transpose=transpose)

    torch.testing.assert_close(sparse(values, x), dense(values, x))
    assert torch.autograd.gradcheck(sparse, (values, x))
    assert torch.autograd.gradgradcheck(sparse, (values, x))


def test_the_dot_products_and_their_derivatives_are_each_entrys():
    pattern, edges = _pattern()
    g = torch.Generator().manual_seed(2)
    a = torch.randn(12, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(12, 3, generator=g, dtype=torch.float64, requires_grad=True)
    expected = (a[edges[0]] * b[edges[1]]).sum(-1)
    torch.testing.assert_close(pattern_dot(pattern, a, b), expected)
    assert torch.autograd.gradcheck(lambda a, b: pattern_dot(pattern, a, b), (a, b))
    assert torch.autograd.gradgradcheck(lambda a, b: pattern_dot(pattern, a, b), (a, b))


def test_the_dot_products_gather_where_sampled_addmm_is_missing(monkeypatch):
    pattern, edges = _pattern()
    a, b = torch.randn(12, 4), torch.randn(12, 4)
    expected = (a[edges[0]] * b[edges[1]]).sum(-1)

    def missing(*args, **kwargs):
        raise NotImplementedError("no sampled_addmm here")

    monkeypatch.setattr(torch.sparse, "sampled_addmm", missing)
    torch.testing.assert_close(pattern_dot(pattern, a, b), expected)
