"""Clear errors of load_csv / from_dataframe for files and frames that would otherwise load wrongly."""

import re

import numpy as np
import pandas as pd
import pytest

import fairbinn


def _frame(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(["a", "b"], n), "y": np.arange(n) % 2})


def test_non_utf8_file_names_the_line_and_suggests_an_encoding(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("x,g,y\n0.5,a,0\n1.5,b,1\n2.5,caf\xe9,0\n3.5,a,1\n".encode("latin-1"))
    message = (f"{path}, line 4: expected utf-8 text, found the byte(s) b'\\xe9' at byte offset 29 (invalid "
               'continuation byte); give the file\'s encoding, e.g. encoding="latin-1"')
    with pytest.raises(ValueError, match=re.escape(message)):
        fairbinn.load_csv(path, "y", "g", val_fraction=0.25, test_fraction=0.25)
    data = fairbinn.load_csv(path, "y", "g", encoding="latin-1", val_fraction=0.25, test_fraction=0.25)
    assert data.group_names == ["a", "b", "café"]
    with pytest.raises(ValueError, match="unknown text encoding 'no-such-codec'"):
        fairbinn.load_csv(path, "y", "g", encoding="no-such-codec")


def test_undecodable_header_is_line_1(tmp_path):
    path = tmp_path / "head.csv"
    path.write_bytes("x,gr\xfcppe,y\n1,a,0\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"head.csv, line 1: expected utf-8 text, found the byte\(s\) b'\\xfc' at "
                                         r"byte offset 4 \(invalid start byte\); give the file's encoding"):
        fairbinn.load_csv(path, "y", "grüppe")


def test_thousands_separators_are_an_error_unless_read_as_numbers(tmp_path):
    frame = _frame()
    frame["amount"] = [f"{v:,}" for v in 900 + 37 * np.arange(40)]  # "900" ... "2,343"
    path = tmp_path / "amounts.csv"
    frame.to_csv(path, index=False)
    assert '"1,011"' in path.read_text()  # quoted, as a CSV writer does
    with pytest.raises(ValueError, match=re.escape(
            f"{path}: column 'amount' holds numbers written with thousands separators as text (e.g. '1,011'; "
            "40 of 40 rows are numbers once ',' is removed), so it would be one-hot encoded; read the file with "
            "thousands=','")):
        fairbinn.load_csv(path, "y", "g")
    data = fairbinn.load_csv(path, "y", "g", thousands=",")
    assert data.feature_names == ["x", "amount", "g_a", "g_b"]
    amounts = 900 + 37 * np.arange(40.0)
    assert data.encoder.mean_["amount"] == pytest.approx(
        amounts[fairbinn.tabular.preprocess.seeded_partition(40, [0.2, 0.2], 0)[2]].mean())
    # the same check for a DataFrame; a category column is one-hot encoded on purpose
    with pytest.raises(ValueError, match="column 'amount' holds numbers written with thousands separators"):
        fairbinn.from_dataframe(frame, "y", "g")
    categorical = fairbinn.from_dataframe(frame.astype({"amount": "category"}), "y", "g")
    amount_columns = [n for n in categorical.feature_names if n.startswith("amount_")]
    assert len(amount_columns) == len(categorical.train) == 24  # one per distinct training value


def test_text_with_a_few_commas_stays_categorical():
    frame = _frame()
    frame["city"] = ["Paris, TX", "Austin"] * 20
    data = fairbinn.from_dataframe(frame, "y", "g")
    assert {"city_Austin", "city_Paris, TX"} <= set(data.feature_names)


def test_all_missing_column_is_named(tmp_path):
    frame = _frame().assign(empty=np.nan)
    with pytest.raises(ValueError, match=re.escape(
            "the DataFrame: column(s) ['empty'] have no values (missing in all 40 rows); leave them out of the "
            "features, e.g. features=['x', 'g']")):
        fairbinn.from_dataframe(frame, "y", "g")
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"t.csv: column\(s\) \['empty'\] have no values"):
        fairbinn.load_csv(path, "y", "g")
    data = fairbinn.load_csv(path, "y", "g", features=["x", "g"])
    assert data.feature_names == ["x", "g_a", "g_b"]
    with pytest.raises(ValueError, match=r"column\(s\) \['g'\] have no values \(missing in all 40 rows\)$"):
        fairbinn.from_dataframe(frame.assign(g=np.nan), "y", "g", features=["x"])
    with pytest.raises(ValueError, match="the DataFrame: has no rows"):
        fairbinn.from_dataframe(frame.iloc[:0], "y", "g")


def test_repeated_header_names_are_an_error(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a,g,b,y\n1,2,3,u,4,0\n5,6,7,v,8,1\n")
    with pytest.raises(ValueError, match=re.escape(
            f"{path}: the header row names column(s) ['a', 'b'] more than once; every column needs its own name")):
        fairbinn.load_csv(path, "y", "g")
    frame = pd.DataFrame([[1, 2, "u", 0]], columns=["a", "a", "g", "y"])
    with pytest.raises(ValueError, match=r"the DataFrame: column name\(s\) \['a'\] occur more than once"):
        fairbinn.from_dataframe(frame, "y", "g")
