"""Header-row CSV files read with errors that name the file, the line and what was expected.

:func:`read_csv_table` is the one place where the loaders of delimited tables
(Heritage Health, FairGNN node tables) check a file before trusting it: the
header's delimiter, the required columns, the number of fields on every line,
the numeric columns and the columns that need a value on every row. Every error is a ``ValueError`` of the form
``"<path>, line <n>: expected ..., found/got ..."`` with a 1-based line number.
"""

from __future__ import annotations

import csv
import io
import zipfile
from itertools import islice
from pathlib import Path
from typing import Callable, Collection

import pandas as pd

__all__ = ["read_csv_table", "guess_separator", "SEPARATOR_NAMES"]

SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
"""Words for the separators, as used in error messages."""
_CANDIDATES = (",", ";", "\t", "|")
_HEAD = 1 << 20  # bytes whose lines are counted before pandas parses the file


def guess_separator(line: str, expected: str | None = None) -> str | None:
    """The separator ``line`` seems to use instead of ``expected``: the most frequent of ``, ; tab |``, or None.

    ``expected=None`` stands for whitespace-separated text, where a tab is no
    sign of another separator.
    """
    counts = {c: line.count(c) for c in _CANDIDATES if c != expected and not (expected is None and c == "\t")}
    best = max(counts, key=counts.get, default=None)
    return best if best is not None and counts[best] else None


def _separator_name(sep: str) -> str:
    return SEPARATOR_NAMES.get(sep, repr(sep))


def _read_bytes(path: Path) -> bytes:
    """The file's bytes; a ``.zip`` archive must hold exactly one file, which is read."""
    if path.suffix.lower() != ".zip":
        return path.read_bytes()
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if not m.endswith("/")]
            if len(members) != 1:
                raise ValueError(f"{path}: expected a zip archive holding one file, found {len(members)}: {members[:5]}")
            return archive.read(members[0])
    except zipfile.BadZipFile as error:
        raise ValueError(f"{path}: expected a zip archive, the file is not one ({error})") from None


def _decode(path: Path, line: bytes, number: int) -> str:
    try:
        return line.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}, line {number}: expected UTF-8 text, found the byte(s) {line[error.start:error.end]!r}"
        ) from None


def _shown(text: str, width: int = 80) -> str:
    return repr(text if len(text) <= width else text[:width] + "...")


def _field_count_error(path: Path, number: int, found: int, width: int, sep: str, header_line: int, text: str):
    if found < width:
        hint = "a row cut short or a missing value"
        if found == 1 and (other := guess_separator(text, sep)):
            hint = f"the line looks {other!r}-separated"
    else:
        hint = "an extra field, or an unquoted separator inside a value"
    return ValueError(
        f"{path}, line {number}: expected {width} {_separator_name(sep)}-separated fields "
        f"(as in the header on line {header_line}), found {found} ({hint}): {_shown(text)}"
    )


def _head_lines(data: bytes) -> list[bytes]:
    """The complete lines of the file's first megabyte (all lines if the first one is longer)."""
    if len(data) <= _HEAD:
        return data.splitlines()
    lines = data[:_HEAD].splitlines()[:-1]  # the last one may be cut by the slice
    return lines if any(line.strip() for line in lines) else data.splitlines()


def _records(text: str, sep: str):
    """``(first line, fields)`` of each record of a CSV text with quotes; blank lines are left out, as pandas does."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    previous = 0
    for fields in reader:
        start, previous = previous + 1, reader.line_num
        if fields and not (len(fields) == 1 and not fields[0].strip()):
            yield start, fields


def _check_fields(path: Path, rows, width: int, sep: str, header_line: int) -> None:
    """Raise for the first of ``rows`` (``(line number, bytes or fields)``) whose field count is not ``width``."""
    bsep = sep.encode()
    for number, row in rows:
        if number <= header_line:
            continue
        if isinstance(row, bytes):
            if row.count(bsep) + 1 == width or not row.strip():
                continue
            found, text = row.count(bsep) + 1, _decode(path, row, number)
        elif len(row) != width:
            found, text = len(row), sep.join(row)
        else:
            continue
        raise _field_count_error(path, number, found, width, sep, header_line, text)


def _all_rows(data: bytes, sep: str, quoted: bool):
    """``(line number, row)`` of the whole file: raw lines, or for a file with quotes the parsed records."""
    if quoted:
        return _records(data.decode("utf-8-sig"), sep)
    return enumerate(data.splitlines(), start=1)


def _row_lines(data: bytes, header_line: int, rows: int, sep: str, quoted: bool) -> pd.Index:
    """The 1-based line number of each of the ``rows`` data rows that pandas read."""
    if not quoted and b"\r" not in data:
        lines = data.count(b"\n") + (not data.endswith(b"\n"))
        if rows == lines - header_line:  # no blank line after the header: one row per line
            return pd.RangeIndex(header_line + 1, header_line + 1 + rows)
    if quoted:
        return pd.Index([start for start, _ in _records(data.decode("utf-8-sig"), sep)][1:])
    return pd.Index([n for n, line in enumerate(data.splitlines(), start=1) if n > header_line and line.strip()])


def _raise_undecodable(path: Path, data: bytes) -> None:
    for number, line in enumerate(data.splitlines(), start=1):
        _decode(path, line, number)  # raises, naming the line


def read_csv_table(
    path: str | Path,
    *,
    required: Collection[str] = (),
    numeric: Collection[str] | Callable[[str], bool] | None = None,
    complete: Collection[str] | Callable[[str], bool] | None = None,
    what: str = "table",
    sep: str = ",",
    line_index: bool = False,
) -> pd.DataFrame:
    """Read a delimited file with a header row into a DataFrame, checking it line by line.

    Parameters
    ----------
    path : path
        A plain file, or a ``.zip`` archive holding a single file.
    required : collection of str
        Columns the header must name.
    numeric : collection of str or callable, optional
        Columns (or a predicate on the column name) whose every non-empty
        value must be a number.
    complete : collection of str or callable, optional
        Columns (or a predicate) that must have a value on every row.
    what : str
        What the file is, for the messages (e.g. ``"node table"``).
    sep : str, default ","
        The field separator.
    line_index : bool, default False
        Index the rows by their 1-based line number in the file (for the
        caller's own error messages) instead of ``0 .. n-1``.

    Returns
    -------
    pandas.DataFrame
        What ``pandas.read_csv(path, sep=sep)`` returns for a well-formed file
        (with ``line_index``, indexed by line number).

    Raises
    ------
    ValueError
        ``"<path>, line <n>: expected ..."`` for the first problem: an empty
        file, a header in another delimiter (one field holding ``;``, tab or
        ``|``), a required column missing from the header, a line with more or
        fewer fields than the header, a value that is not a number in a
        numeric column, an empty field in a complete column, or text that is
        not UTF-8.

    Blank lines are skipped, as pandas skips them. A line's fields are
    counted by its separators; in a file with quote characters the ``csv``
    module splits the records, so quoted separators and line breaks count
    right. Only the first megabyte is counted up front: after pandas has
    parsed the file, a row with too many fields (a pandas parser error) or
    too few (a missing value in the last column) sends the whole file through
    the count, which then names the line.
    """
    path = Path(path)
    data = _read_bytes(path)
    head = _head_lines(data)
    header = next((i for i, line in enumerate(head) if line.strip()), None)
    if header is None:
        raise ValueError(f"{path}: expected a {what} with a header row of column names, the file is empty")
    header_line = header + 1
    header_text = _decode(path, head[header], header_line)
    quoted = b'"' in data
    names = next(csv.reader([header_text], delimiter=sep)) if quoted else header_text.split(sep)
    other = guess_separator(header_text, sep) if len(names) == 1 else None
    if other:
        raise ValueError(
            f"{path}, line {header_line}: expected {_separator_name(sep)}-separated column names "
            f"(the header of a {what}), line {header_line} looks {other!r}-separated: {_shown(header_text)}"
        )
    missing = [c for c in required if c not in names]
    if missing:
        listed = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        quoted_missing = ", ".join(map(repr, missing))
        raise ValueError(
            f"{path}, line {header_line}: expected column{'s' if len(missing) > 1 else ''} {quoted_missing} "
            f"in the header (line {header_line}) of the {what}, found no column {quoted_missing} "
            f"among its {len(names)}: {listed}"
        )
    width = len(names)
    # the first rows up front: pandas would take a first row with one field too many as an index column
    if quoted:
        try:
            _check_fields(path, islice(_records(data.decode("utf-8-sig"), sep), 1000), width, sep, header_line)
        except UnicodeDecodeError:
            _raise_undecodable(path, data)
            raise
    else:
        _check_fields(path, enumerate(head, start=1), width, sep, header_line)

    try:
        frame = pd.read_csv(io.BytesIO(data), sep=sep)
    except UnicodeDecodeError:
        _raise_undecodable(path, data)
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        _check_fields(path, _all_rows(data, sep, quoted), width, sep, header_line)
        raise ValueError(f"{path}: expected a {what} of {_separator_name(sep)}-separated values ({error})") from None
    if len(frame.columns) != width or (len(frame) and frame.iloc[:, -1].isna().any()):
        _check_fields(path, _all_rows(data, sep, quoted), width, sep, header_line)  # a row cut short?

    problems = []  # (row position, message or name of a column with a missing value), first of each column
    for column in _selected(frame.columns, numeric):
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values):
            continue
        bad = (pd.to_numeric(values, errors="coerce").isna() & values.notna()).to_numpy()
        if bad.any():
            row = int(bad.argmax())
            problems.append((row, f"expected a number in column {column!r}, got {str(values.iloc[row])!r}"))
    for column in _selected(frame.columns, complete):
        values = frame[column]
        if pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue  # these cannot hold a missing value
        empty = values.isna().to_numpy()
        if empty.any():
            problems.append((int(empty.argmax()), column))
    if problems or line_index:
        numbers = _row_lines(data, header_line, len(frame), sep, quoted)
        if problems:
            row, problem = min(problems, key=lambda p: p[0])
            if not problem.startswith("expected"):  # a column with a missing value: say what the field holds
                field = _raw_field(data, numbers[row], list(frame.columns).index(problem), sep, quoted)
                found = "an empty field" if not field.strip() else f"{field!r}, a missing-value marker"
                problem = f"expected a value in column {problem!r}, found {found}"
            raise ValueError(f"{path}, line {numbers[row]}: {problem}")
        frame.index = numbers
    return frame


def _raw_field(data: bytes, number: int, position: int, sep: str, quoted: bool) -> str:
    """The text of field ``position`` of the row on line ``number``, as written in the file."""
    if quoted:
        fields = next(fields for start, fields in _records(data.decode("utf-8-sig"), sep) if start == number)
    else:
        fields = data.splitlines()[number - 1].decode("utf-8", errors="replace").split(sep)
    return fields[position]


def _selected(columns: pd.Index, selection: Collection[str] | Callable[[str], bool] | None) -> list[str]:
    if selection is None:
        return []
    if callable(selection):
        return [c for c in columns if selection(c)]
    return [c for c in columns if c in selection]
