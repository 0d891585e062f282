"""read_table: the formats a user's table comes in, and one-line errors naming file, line and
column (issue 13)."""

import builtins
import bz2
import gzip
import zipfile

import numpy as np
import pandas as pd
import pytest

from saddlepoint.data import TableError, load_bundled_frame, read_table

EXPECTED = pd.DataFrame(
    {
        "name": ["ann", "bob, jr.", "cy"],
        "age": [31.0, np.nan, 45.0],
        "member": [True, False, True],
        "y": [1, 0, 1],
    }
)


def rows(separator: str, quote_all: bool = False) -> str:
    q = (lambda s: f'"{s}"') if quote_all else (lambda s: s)
    return (
        separator.join(map(q, ["name", "age", "member", "y"]))
        + "\n"
        + "".join(
            separator.join([f'"{name}"' if separator in name or "," in name else q(name), age, member, y])
            + "\n"
            for name, age, member, y in [
                ("ann", "31", "True", "1"),
                ("bob, jr.", "NA", "False", "0"),
                ("cy", "45", "True", "1"),
            ]
        )
    )


def check(frame):
    assert list(frame.columns) == list(EXPECTED.columns)
    assert frame["name"].tolist() == EXPECTED["name"].tolist()
    np.testing.assert_array_equal(frame["age"].to_numpy(), EXPECTED["age"].to_numpy())
    assert frame["member"].tolist() == [True, False, True] and frame["y"].tolist() == [1, 0, 1]


@pytest.mark.parametrize(
    "name,separator",
    [
        ("comma.csv", ","),
        ("semicolon.csv", ";"),
        ("tab.tsv", "\t"),
        ("tab.csv", "\t"),
        ("pipe.txt", "|"),
        ("semicolon.txt", ";"),
    ],
)
def test_the_delimiter_is_detected(tmp_path, name, separator):
    path = tmp_path / name
    path.write_text(rows(separator), encoding="utf-8")
    frame = read_table(path)
    check(frame)
    assert frame.index.name == "line" and frame.index.tolist() == [2, 3, 4]


def test_a_byte_order_mark_windows_lines_and_quoted_fields(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + rows(",", quote_all=True).replace("\n", "\r\n").encode())
    check(read_table(path))
    path.write_text('a,b,y\n"1,5","x;y|z",0\n"2","line\nbreak",1\n3,"say ""hi""",0\n', encoding="utf-8")
    frame = read_table(path)
    assert frame["a"].tolist() == ["1,5", "2", "3"]  # stays text: "1,5" is not a number
    assert frame["b"].tolist() == ["x;y|z", "line\nbreak", 'say "hi"']
    assert frame.index.tolist() == [2, 3, 5]  # where each row starts


def test_space_separated_and_decimal_commas(tmp_path):
    path = tmp_path / "spaces.txt"
    path.write_text("a  b   y\n1.5  2 0\n2.5  3 1\n", encoding="utf-8")
    frame = read_table(path)
    assert list(frame.columns) == ["a", "b", "y"] and frame["a"].tolist() == [1.5, 2.5]
    path = tmp_path / "european.csv"
    path.write_text("a;b;y\n1,5;2;0\n-2,25;3;1\n", encoding="utf-8")
    assert read_table(path)["a"].tolist() == [1.5, -2.25]


def test_missing_markers_become_nan(tmp_path):
    markers = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "#N/A", "?"]
    path = tmp_path / "missing.csv"
    path.write_text("a,b,y\n" + "".join(f"{m},{i},x\n" for i, m in enumerate(markers)) + "7,9,z\n")
    frame = read_table(path)
    assert frame["a"].isna().tolist() == [True] * len(markers) + [False]
    assert frame["a"].dtype == np.float64 and frame["a"].iloc[-1] == 7.0
    path.write_text("a,b,y\n1,,x\n2,z,\n,,\n")  # a row of empty cells is a row of missing values
    frame = read_table(path)
    assert frame["b"].isna().tolist() == [True, False, True] and frame["y"].isna().tolist() == [
        False,
        True,
        True,
    ]


@pytest.mark.parametrize("suffix,compress", [(".csv.gz", gzip.compress), (".tsv.bz2", bz2.compress)])
def test_compressed_files(tmp_path, suffix, compress):
    path = tmp_path / f"table{suffix}"
    path.write_bytes(compress(rows("\t" if ".tsv" in suffix else ",").encode()))
    check(read_table(path))


def test_a_zip_of_one_table(tmp_path):
    path = tmp_path / "table.csv.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("table.csv", rows(","))
    check(read_table(path))


def test_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "table.parquet"
    frame = EXPECTED.assign(when=pd.to_datetime(["2024-01-02", "2024-02-03", None]))
    frame.to_parquet(path)
    read = read_table(path)
    check(read.drop(columns="when"))
    assert read["when"].dtype.kind == "M" and read["when"].isna().tolist() == [False, False, True]
    assert read.index.name == "row" and read.index.tolist() == [1, 2, 3]
    with pytest.raises(
        TableError, match=r"has no column 'z'; its columns are \['name', 'age', 'member', 'y', 'when'\]"
    ):
        read_table(path, target="z")
    broken = tmp_path / "broken.pq"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(TableError, match=r"broken.pq is not a readable Parquet file: "):
        read_table(broken)


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1")
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(
        TableError, match=r"t.parquet: reading Parquet files needs pyarrow; install saddlepoint\[parquet\]"
    ):
        read_table(path)


@pytest.mark.parametrize(
    "contents,message",
    [
        (b"", "{f} is empty: it needs a header row and data rows"),
        (b"\n \n", "{f} is empty"),
        (b"a,b,y\n", "{f} has a header but no data rows"),
        (b"a,b,y\n1,2,0\n3,4\n", "{f} line 3 has 2 cells, the header has 3"),
        (b"a,b,y\n1,2,0\n\n3,4,5,6\n", "{f} line 4 has 4 cells, the header has 3"),
        (b"a,a,y\n1,2,0\n", "{f} line 1: the column name 'a' appears twice (columns 1 and 2)"),
        (b"a,,y\n1,2,0\n", "{f} line 1, column 2: the header cell is empty"),
        (b"a,b,y\n1,2,0\n3,caf\xe9,1\n", "{f} line 3: byte 0xe9 is not UTF-8 text"),
        (b"a,b,y\n1,inf,0\n3,4,1\n", "{f} line 2, column 'b': 'inf' is not a finite number"),
        (
            b"a,b,y\n1,2,0\n3,1e39,1\n",
            "{f} line 3, column 'b': '1e39' is beyond the range of the model's numbers",
        ),
        (
            b"a,b,y\n" + b"".join(b"%d,%d,0\n" % (i, i) for i in range(2, 11)) + b"1,two,1\n",
            "{f} line 11, column 'b': 'two' is not a number, unlike 9 of the column's 10 cells",
        ),
    ],
)
def test_errors_are_one_line_naming_file_line_and_column(tmp_path, contents, message):
    path = tmp_path / "t.csv"
    path.write_bytes(contents)
    with pytest.raises(TableError) as error:
        read_table(path)
    text = str(error.value)
    assert message.format(f=path) in text and "\n" not in text


def test_files_that_cannot_be_read(tmp_path):
    with pytest.raises(TableError, match=r"missing.csv does not exist"):
        read_table(tmp_path / "missing.csv")
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(TableError, match=r"folder.csv is a directory, not a CSV file"):
        read_table(tmp_path / "folder.csv")
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(TableError, match=r"bad.csv.gz is not a valid gz file: "):
        read_table(bad)
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n")
    with pytest.raises(TableError, match=r"t.csv has no column 'y'; its columns are \['a', 'b'\]"):
        read_table(table, target="y")


def test_text_columns_of_mostly_words_stay_text(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("code,y\n" + "".join(f"{c},0\n" for c in ["1", "2", "A", "B", "3"]))
    assert read_table(path)["code"].tolist() == ["1", "2", "A", "B", "3"]


def test_bundled_frames():
    frame = load_bundled_frame("iris")
    assert frame.shape == (150, 5) and frame.columns[-1] == "target"


def test_rows_are_named_by_the_line_where_they_start(tmp_path):
    """Past blank lines and quoted newlines, rows are named by the file line they start on."""
    path = tmp_path / "d.csv"
    path.write_text('a,"the\nlabel"\n\n1,0\n"2\n",1\n3,x\n')
    frame = read_table(path, target="the\nlabel")
    assert list(frame.columns) == ["a", "the\nlabel"] and frame.index.tolist() == [4, 5, 7]
    assert frame["the\nlabel"].tolist() == ["0", "1", "x"]  # a third of words: text, a category
    path.write_text('a,"the\nlabel"\n\n' + '"1\n",0\n' * 10 + "3,x\n")
    with pytest.raises(
        TableError, match=r"d.csv line 24, column 'the\\nlabel': 'x' is not a number, unlike 10"
    ):
        read_table(path)
