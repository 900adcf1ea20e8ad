import numpy as np
import pytest

from fairbinn.graph.fairgnn_files import (
    PublishedFile,
    check_published,
    edges_to_positions,
    read_edge_list,
    read_node_table,
)
from fairbinn.graph.datasets import load_fairgnn_graph

from fairgnn_fixtures import write_graph

TOY = dict(label="target", sensitive="group", label_number=10)
NBA = dict(label="SALARY", sensitive="country", label_number=5)


def test_edge_list_reads_tabs_spaces_and_blank_lines(tmp_path):
    path = tmp_path / "e.txt"
    path.write_text("1\t2\n3 4\n\n5   6\n")
    np.testing.assert_array_equal(read_edge_list(path), [[1, 2], [3, 4], [5, 6]])


@pytest.mark.parametrize(
    "text, message",
    [
        ("1\t2\n3\t4\n7\n", r"e\.txt, line 3: expected two integer node ids separated by whitespace, found 1 field\(s\): '7'"),
        ("1\t2\n3\tx\n", r"e\.txt, line 2: expected two integer node ids, got 'x' in '3\\tx'"),
        ("1 2\n\n3 4 5\n", r"e\.txt, line 3: expected two integer node ids separated by whitespace, found 3 field\(s\)"),
        ("1,2\n3,4\n", r"e\.txt, line 1: .* found 1 field\(s\), the line looks ','-separated: '1,2'"),
        ("1 2\n3 4.5\n", r"e\.txt, line 2: expected two integer node ids, got '4\.5'"),
    ],
)
def test_edge_list_names_the_malformed_line(tmp_path, text, message):
    path = tmp_path / "e.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
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
    path.write_text("user_id,a\n1,0\n2,0\n\n1,5\n")
    with pytest.raises(ValueError, match=r"n\.csv, line 5: expected every node id once in column 'user_id', "
                                         r"found 1 again \(first on line 2\); 1 duplicate node id\(s\) in all"):
        read_node_table(path, "user_id")
    with pytest.raises(ValueError, match=r"n\.csv, line 1: expected column 'uid' in the header \(line 1\) of the "
                                         r"node table, found no column 'uid' among its 2: user_id, a"):
        read_node_table(path, "uid")


@pytest.mark.parametrize(
    "text, message",
    [
        ("user_id,a\n1,0\n2.5,0\n", r"n\.csv, line 3: expected an integer node id in column 'user_id', got 2\.5"),
        ("user_id,a\n1,0\nx7,0\n", r"n\.csv, line 3: expected a number in column 'user_id', got 'x7'"),
        ("user_id,a\n1,0\n,0\n", r"n\.csv, line 3: expected a value in column 'user_id', found an empty field"),
    ],
)
def test_node_ids_must_be_integers_on_every_line(tmp_path, text, message):
    path = tmp_path / "n.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_node_table(path, "user_id")


def test_node_table_index_is_positional(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("user_id,a\n\n5,0\n7,1\n")
    assert read_node_table(path, "user_id").index.tolist() == [0, 1]


# --- malformed copies of the real NBA node table: its header and first rows ------------------------


@pytest.fixture
def nba_lines(data_dir):
    with open(data_dir / "nba" / "nba.csv") as handle:
        return [line for _, line in zip(range(21), handle)]


@pytest.mark.parametrize(
    "number, transform, message",
    [
        (4, lambda line: line.rsplit(",", 2)[0] + "\n",
         r"nba\.csv, line 4: expected 98 comma-separated fields \(as in the header on line 1\), found 96 "
         r"\(a row cut short or a missing value\)"),
        (6, lambda line: line.replace(",", ",,", 1), r"nba\.csv, line 6: expected 98 .*found 99 \(an extra field"),
        (1, lambda line: line.replace(",", "\t"),
         r"nba\.csv, line 1: expected comma-separated column names \(the header of a node table\), "
         r"line 1 looks '\\t'-separated: 'user_id\\tSALARY"),
        (1, lambda line: line.replace("user_id", "id"), r"nba\.csv, line 1: expected column 'user_id' in the header"),
    ],
)
def test_malformed_real_node_table(tmp_path, nba_lines, number, transform, message):
    nba_lines[number - 1] = transform(nba_lines[number - 1])
    path = tmp_path / "nba.csv"
    path.write_text("".join(nba_lines))
    with pytest.raises(ValueError, match=message):
        read_node_table(path, "user_id")


def _set_field(line, index, value):
    fields = line.split(",")
    fields[index] = value
    return ",".join(fields)


def test_cut_real_node_table_and_bad_values_via_the_loader(tmp_path, nba_lines):
    path = tmp_path / "nba.csv"
    edges = tmp_path / "nba_relationship.txt"
    edges.write_text("")
    path.write_text("".join(nba_lines)[:-40])  # the last line stops half-way
    with pytest.raises(ValueError, match=r"nba\.csv, line 21: expected 98 comma-separated fields .*cut short"):
        load_fairgnn_graph(path, edges, **NBA)
    nba_lines[7] = _set_field(nba_lines[7], 1, "abc")  # SALARY
    path.write_text("".join(nba_lines))
    with pytest.raises(ValueError, match=r"nba\.csv, line 8: expected a number in column 'SALARY', got 'abc'"):
        load_fairgnn_graph(path, edges, **NBA)


def test_feature_values_are_checked_with_line_and_column(tmp_path):
    nodes, edges = write_graph(tmp_path)
    lines = nodes.read_text().splitlines(keepends=True)
    original = list(lines)
    lines[3] = _set_field(lines[3], 1, "1.2.3")  # f_a of the third node
    nodes.write_text("".join(lines))
    with pytest.raises(ValueError, match=r"toy\.csv, line 4: expected a number in column 'f_a', got '1\.2\.3'"):
        load_fairgnn_graph(nodes, edges, **TOY)
    lines[3] = _set_field(original[3], 1, "NA")
    nodes.write_text("".join(lines))
    with pytest.raises(ValueError, match=r"toy\.csv, line 4: expected a value in column 'f_a', found 'NA', a missing-value marker"):
        load_fairgnn_graph(nodes, edges, **TOY)
    lines[3] = _set_field(original[3], 1, "")
    nodes.write_text("".join(lines))
    with pytest.raises(ValueError, match=r"toy\.csv, line 4: expected a value in column 'f_a', found an empty field"):
        load_fairgnn_graph(nodes, edges, **TOY)
    load_fairgnn_graph(nodes, edges, **TOY, features=["f_b"])  # a column that is not a feature may be empty
    with pytest.raises(ValueError, match=r"toy\.csv, line 1: feature column\(s\) \['nope'\] not found; expected "
                                         r"them in the header \(line 1\)"):
        load_fairgnn_graph(nodes, edges, **TOY, features=["f_b", "nope"])


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
