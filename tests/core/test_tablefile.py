import io
import re
import zipfile

import pandas as pd
import pytest

from fairbinn.core.tablefile import guess_separator, read_csv_table

GOOD = "id,b,c\n1,2.5,x\n2,3.5,y\n3,4.5,z\n"


def _write(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_well_formed_file_reads_as_pandas_does(tmp_path):
    path = _write(tmp_path, GOOD)
    table = read_csv_table(path, required=["id", "c"], numeric=["id", "b"], complete=lambda c: True)
    pd.testing.assert_frame_equal(table, pd.read_csv(path))
    indexed = read_csv_table(_write(tmp_path, "\nid,b\n1,2\n\n  \n3,4\n5,6", "blank.csv"), line_index=True)
    assert indexed.index.tolist() == [3, 6, 7] and indexed["b"].tolist() == [2, 4, 6]
    assert read_csv_table(path, line_index=True).index.tolist() == [2, 3, 4]


def test_single_member_zip_is_read(tmp_path):
    path = tmp_path / "t.csv.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("t.csv", GOOD.replace("2,3.5,y", "2,3.5"))
    with pytest.raises(ValueError, match=r"t\.csv\.zip, line 3: expected 3 comma-separated fields"):
        read_csv_table(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("t.csv", GOOD)
    pd.testing.assert_frame_equal(read_csv_table(path), pd.read_csv(io.StringIO(GOOD)))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("u.csv", GOOD)
    with pytest.raises(ValueError, match=r"t\.csv\.zip: expected a zip archive holding one file, found 2"):
        read_csv_table(path)


@pytest.mark.parametrize(
    "text, message",
    [
        (GOOD.replace("2,3.5,y", "2,3.5"),
         r"t\.csv, line 3: expected 3 comma-separated fields \(as in the header on line 1\), found 2 "
         r"\(a row cut short or a missing value\): '2,3.5'"),
        (GOOD.rstrip("\n")[:-2], r"t\.csv, line 4: expected 3 comma-separated fields .*found 2 \(a row cut short"),
        (GOOD.replace("3,4.5,z", "3,4.5,z,"), r"t\.csv, line 4: expected 3 .* found 4 \(an extra field"),
        (GOOD.replace("1,2.5,x", "1,2.5,x,9"), r"t\.csv, line 2: expected 3 .* found 4"),  # pandas: index column
        (GOOD.replace("2,3.5,y", "2;3.5;y"), r"t\.csv, line 3: .* found 1 \(the line looks ';'-separated\)"),
        ("\n\n" + GOOD.replace("2,3.5,y", "2,3.5"), r"t\.csv, line 5: expected 3 comma-separated fields \(as in the header on line 3\)"),
    ],
)
def test_rows_with_the_wrong_number_of_fields(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_csv_table(_write(tmp_path, text))


def test_bad_row_past_the_first_megabyte_is_found(tmp_path):
    rows = [f"{i},{i % 7}.5,name{i}" for i in range(120_000)]  # about 2 MB
    rows[100_000] = "100000,3.5"
    path = _write(tmp_path, "id,b,c\n" + "\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"t\.csv, line 100002: expected 3 comma-separated fields .*found 2"):
        read_csv_table(path)
    rows[100_000] = "100000,3.5,x,y"
    path = _write(tmp_path, "id,b,c\n" + "\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"t\.csv, line 100002: expected 3 comma-separated fields .*found 4"):
        read_csv_table(path)


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_header_in_another_delimiter(tmp_path, sep):
    path = _write(tmp_path, GOOD.replace(",", sep))
    message = (rf"t\.csv, line 1: expected comma-separated column names \(the header of a node table\), "
               rf"line 1 looks {re.escape(repr(sep))}-separated")
    with pytest.raises(ValueError, match=message):
        read_csv_table(path, required=["id"], what="node table")


def test_missing_columns_are_named(tmp_path):
    path = _write(tmp_path, GOOD)
    with pytest.raises(ValueError, match=r"t\.csv, line 1: expected columns 'z', 'w' in the header \(line 1\) "
                                         r"of the table, found no column 'z', 'w' among its 3: id, b, c"):
        read_csv_table(path, required=["id", "z", "w"])
    with pytest.raises(ValueError, match=r"line 1: expected column 'z' in the header"):
        read_csv_table(path, required=["z"])


def test_non_numeric_and_empty_values_name_line_and_column(tmp_path):
    path = _write(tmp_path, "id,b,c\n1,2.5,x\n\n2,abc,y\n3,,z\n4,n/a,w\n")
    with pytest.raises(ValueError, match=r"t\.csv, line 4: expected a number in column 'b', got 'abc'"):
        read_csv_table(path, numeric=["id", "b"])
    path = _write(tmp_path, "id,b,c\n1,2.5,x\n2,,y\n3,1.0,\n")
    read_csv_table(path, numeric=["b"])  # empty is allowed unless the column must be complete
    with pytest.raises(ValueError, match=r"t\.csv, line 3: expected a value in column 'b', found an empty field"):
        read_csv_table(path, complete=lambda column: column != "c")
    with pytest.raises(ValueError, match=r"line 4: expected a value in column 'c'"):
        read_csv_table(path, complete=["c"])
    path = _write(tmp_path, "id,b,c\n1,2.5,x\n2,N/A,y\n")  # pandas reads N/A as missing
    with pytest.raises(ValueError, match=r"line 3: expected a value in column 'b', found 'N/A', a missing-value marker"):
        read_csv_table(path, complete=["b"])


def test_quoted_fields_count_as_one(tmp_path):
    text = 'id,b,c\n1,2,"a, b"\n2,3,"two\nlines"\n3,4,"x"\n'
    table = read_csv_table(_write(tmp_path, text), line_index=True)
    assert table["c"].tolist() == ["a, b", "two\nlines", "x"] and table.index.tolist() == [2, 3, 5]
    with pytest.raises(ValueError, match=r"line 5: expected 3 comma-separated fields .*found 2"):
        read_csv_table(_write(tmp_path, text.replace('3,4,"x"', '3,"4"')))
    with pytest.raises(ValueError, match=r"line 5: expected a number in column 'b', got 'four'"):
        read_csv_table(_write(tmp_path, text.replace('3,4,"x"', '3,four,"x"')), numeric=["b"])


def test_empty_and_undecodable_files(tmp_path):
    with pytest.raises(ValueError, match=r"t\.csv: expected a node table with a header row of column names, the file is empty"):
        read_csv_table(_write(tmp_path, "\n \n"), what="node table")
    with pytest.raises(ValueError, match=r"t\.csv, line 3: expected UTF-8 text, found the byte\(s\) b'\\xff'"):
        read_csv_table(_write(tmp_path, b"id,b\n1,2\n3,\xff\n"))


def test_guess_separator():
    assert guess_separator("a;b;c", ",") == ";" and guess_separator("a\tb", ",") == "\t"
    assert guess_separator("a,b;c,d") == "," and guess_separator("abc", ",") is None
    assert guess_separator("a\tb") is None  # tabs are whitespace when whitespace is expected
