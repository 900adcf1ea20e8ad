import numpy as np
import pytest

from fairbinn.graph.fairgnn_files import (
    PublishedFile,
    check_published,
    edges_to_positions,
    read_edge_list,
    read_node_table,
)


def test_edge_list_reads_tabs_spaces_and_blank_lines(tmp_path):
    path = tmp_path / "e.txt"
    path.write_text("1\t2\n3 4\n\n5   6\n")
    np.testing.assert_array_equal(read_edge_list(path), [[1, 2], [3, 4], [5, 6]])


def test_edge_list_names_the_malformed_line(tmp_path):
    path = tmp_path / "e.txt"
    path.write_text("1\t2\n3\t4\n7\n")
    with pytest.raises(ValueError, match=r"line 3: expected two integer node ids, got '7'"):
        read_edge_list(path)
    path.write_text("1\t2\n3\tx\n")
    with pytest.raises(ValueError, match="line 2"):
        read_edge_list(path)


def test_empty_edge_list_has_no_edges(tmp_path):
    path = tmp_path / "e.txt"
    path.write_text("")
    assert read_edge_list(path).shape == (0, 2)


def test_unknown_endpoints_are_dropped_with_a_count():
    ids = np.array([10, 20, 30])
    edges = np.array([[10, 20], [20, 99], [30, 10], [98, 99]])
    with pytest.warns(UserWarning, match=r"dropped 2 of 4 edges .*\(2 unknown node ids"):
        positions, dropped = edges_to_positions(edges, ids)
    assert dropped == 2
    np.testing.assert_array_equal(positions, [[0, 2], [1, 0]])


def test_node_table_rejects_duplicate_ids(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("user_id,a\n1,0\n2,0\n1,5\n")
    with pytest.raises(ValueError, match=r"1 duplicate node id\(s\) in 'user_id', e.g. \[1\]"):
        read_node_table(path, "user_id")
    with pytest.raises(ValueError, match="no node id column 'uid'"):
        read_node_table(path, "uid")


def test_check_published_compares_size_then_checksum(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"abc")
    sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    assert check_published(tmp_path, (PublishedFile("a.txt", 3, sha),)) == []
    assert check_published(tmp_path, (PublishedFile("a.txt", 4, sha),)) == [
        "a.txt has 3 bytes, the published file 4"
    ]
    assert check_published(tmp_path, (PublishedFile("a.txt", 3, "0" * 64),)) == [
        "a.txt has the published size but a different sha256"
    ]
