"""The Preprocessor: each column's role, the fitted ColumnTransformer, its JSON round trip, and
the targets' encoding (issue 13)."""

import json

import numpy as np
import pandas as pd
import pytest

import saddlepoint as sp
from saddlepoint.data import TargetEncoder, drop_missing_target, read_table, target_values
from saddlepoint.data.preprocess import Preprocessor


def mixed(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """A table of every kind of column, with missing cells in features and target."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer": [f"c{i:04d}" for i in range(n)],  # identifier: text
            "order_id": rng.permutation(n) + 1000,  # identifier: integers named so
            "x": rng.normal(size=n),  # numeric
            "count": rng.integers(0, 500, n),  # numeric: integers of many values
            "stars": rng.integers(1, 6, n),  # categorical: integers of few values
            "color": rng.choice(["red", "green", "blue"], n).astype(object),  # categorical
            "member": rng.choice([True, False], n),  # categorical: booleans
            "joined": pd.date_range("2019-03-01", periods=n, freq="37h").strftime("%Y-%m-%d %H:%M"),
            "constant": 7.0,
            "empty": np.nan,
            "label": rng.choice(["yes", "no"], n).astype(object),
        }
    )
    frame.loc[[3, 10], "x"] = np.nan
    frame.loc[[5], "color"] = np.nan
    frame.loc[[8], "label"] = np.nan
    return frame


def roles(preprocessor: Preprocessor) -> dict:
    return {row["name"]: row["role"] for row in preprocessor.report}


def test_each_kind_of_column_gets_its_role_and_the_report_says_what_was_done():
    frame = mixed()
    pre = Preprocessor().fit(frame, "label")
    assert roles(pre) == {
        "customer": "identifier",
        "order_id": "identifier",
        "x": "numeric",
        "count": "numeric",
        "stars": "categorical",
        "color": "categorical",
        "member": "categorical",
        "joined": "datetime",
        "constant": "dropped",
        "empty": "dropped",
    }
    assert pre.identifier_columns == ["customer", "order_id"]
    assert pre.columns == ["x", "count", "stars", "color", "member", "joined"]
    rows = {row["name"]: row for row in pre.report}
    assert set(rows["x"]) == {"name", "dtype", "role", "action"} and rows["x"]["dtype"] == "float64"
    assert rows["color"]["action"].startswith("one-hot, 3 categories") and rows["color"]["dtype"] == "text"
    assert rows["stars"]["action"].startswith("one-hot, 5 categories")
    assert rows["joined"]["action"] == "date -> year, month, day, weekday, days, hour, standardized"
    assert rows["constant"]["action"] == "dropped: constant (7)"
    assert rows["empty"]["action"] == "dropped: empty: every cell is missing"
    assert (
        len(pre.notices) == 4 and "'customer' dropped: an identifier (200 distinct values" in pre.notices[0]
    )
    names = pre.feature_names
    assert names[:2] == ["x", "count"] and "joined:days" in names and "joined:hour" in names
    assert [n for n in names if n.startswith("color=")] == ["color=blue", "color=green", "color=red"]
    assert [n for n in names if n.startswith("member=")] == ["member=False", "member=True"]
    X = pre.transform(frame)
    assert X.dtype == np.float32 and X.flags.c_contiguous and X.shape == (200, len(names))
    assert np.isfinite(X).all()  # missing cells imputed
    numeric = X[:, : names.index("joined:hour") + 1]
    np.testing.assert_allclose(numeric.mean(axis=0), 0, atol=1e-5)  # standardized on this frame
    one_hot = X[:, names.index("color=blue") :]
    assert set(np.unique(one_hot)) == {0.0, 1.0}
    assert (one_hot[:, :3].sum(axis=1) == 1).all()  # color: one category per row, missing included


def test_the_json_round_trip_transforms_to_the_same_numbers():
    frame = mixed()
    train, new = frame.iloc[:150], frame.iloc[150:].astype({"member": object, "stars": float})
    pre = Preprocessor().fit(train, "label")
    saved = json.dumps(pre.to_dict())  # JSON, no pickle
    loaded = Preprocessor.from_dict(json.loads(saved))
    assert loaded.feature_names == pre.feature_names and loaded.report == pre.report
    assert loaded.identifier_columns == pre.identifier_columns and loaded.columns == pre.columns
    new.loc[new.index[0], "color"] = "purple"  # unseen in training
    new.loc[new.index[1], ["x", "stars", "member", "joined"]] = [np.nan, np.nan, np.nan, np.nan]
    new.loc[new.index[2], "joined"] = "not a date"
    for data in (train, new, new.drop(columns=["customer", "order_id", "label", "empty"])):
        np.testing.assert_array_equal(loaded.transform(data), pre.transform(data))
    X = loaded.transform(new)
    names = pre.feature_names
    color = [j for j, n in enumerate(names) if n.startswith("color=")]
    assert X[0, color].tolist() == [0.0, 0.0, 0.0]  # an unknown category is ignored: all zeros
    # Missing cells at prediction are the training medians and most frequent values.
    stats = {c["name"]: c for c in pre.to_dict()["numeric"]}
    x = names.index("x")
    assert X[1, x] == np.float32((stats["x"]["median"] - stats["x"]["mean"]) / stats["x"]["scale"])
    most = {c["name"]: c["most_frequent"] for c in pre.to_dict()["categorical"]}
    assert (
        X[1, names.index(f"stars={most['stars']}")] == 1
        and X[1, names.index(f"member={most['member']}")] == 1
    )


def test_a_frame_without_a_needed_column_names_it():
    pre = Preprocessor().fit(mixed(), "label")
    with pytest.raises(ValueError, match=r"the table has no column 'color', 'joined', which the model needs"):
        pre.transform(mixed().drop(columns=["color", "joined"]))
    with pytest.raises(ValueError, match=r"column 'x', row 4: 'abc' is not a number"):
        pre.transform(mixed().astype({"x": object}).assign(x=lambda f: f["x"].where(f.index != 4, "abc")))


def test_features_and_drop_choose_columns():
    frame = mixed()
    pre = Preprocessor(features=["x", "color"]).fit(frame, "label")
    assert pre.columns == ["x", "color"] and pre.feature_names == [
        "x",
        "color=blue",
        "color=green",
        "color=red",
    ]
    assert roles(pre)["stars"] == "dropped" and pre.identifier_columns == ["customer", "order_id"]
    pre = Preprocessor(drop=["color", "customer", "joined"]).fit(frame, "label")
    assert (
        "color" not in pre.columns and "joined" not in pre.columns and pre.identifier_columns == ["order_id"]
    )
    assert {r["name"]: r["action"] for r in pre.report}["color"] == "dropped (drop)"
    with pytest.raises(
        ValueError, match=r"features: no column 'colour', 'z'; the columns are \['customer', "
    ):
        Preprocessor(features=["colour", "x", "z"]).fit(frame, "label")
    with pytest.raises(ValueError, match=r"drop: no column 'nope'"):
        Preprocessor(drop=["nope"]).fit(frame, "label")
    with pytest.raises(ValueError, match="no feature column is left"):
        Preprocessor(features=["constant"]).fit(frame, "label")


def test_columns_named_numeric_stay_numbers_whatever_their_values():
    frame = mixed()
    pre = Preprocessor(numeric=["stars", "count", "constant"]).fit(frame, "label")
    assert roles(pre)["stars"] == "numeric" and "stars" in pre.feature_names
    assert roles(pre)["color"] == "categorical" and roles(pre)["constant"] == "dropped"
    again = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    assert np.array_equal(again.transform(frame), pre.transform(frame))


def test_a_bundled_sets_pixels_are_numbers_not_categories():
    frame = sp.data.load_bundled_frame("digits")
    pixels = [c for c in frame.columns if c != "target"]
    pre = Preprocessor(numeric=pixels).fit(frame, "target")
    assert set(roles(pre).values()) == {"numeric", "dropped"}
    assert len(pre.feature_names) == 64 - sum(frame[c].nunique() < 2 for c in pixels)


def test_from_dict_refuses_what_is_not_a_preprocessor():
    with pytest.raises(ValueError, match="not a saddlepoint preprocessor"):
        Preprocessor.from_dict({"format": "pickle"})
    data = Preprocessor().fit(mixed(), "label").to_dict()
    del data["numeric"]
    with pytest.raises(ValueError, match="'numeric' is missing or malformed"):
        Preprocessor.from_dict(data)


def test_string_and_boolean_targets_encode_and_decode_back():
    frame, dropped = drop_missing_target(mixed(), "label")
    assert dropped == 1 and len(frame) == 199
    task, y = target_values(frame["label"], name="label")
    assert task == "classification" and y.dtype.kind == "U"
    encoder = TargetEncoder.fit(task, y)
    assert encoder.labels == ["no", "yes"]
    codes = encoder.encode(y)
    assert codes.dtype == np.int64 and set(codes) == {0, 1}
    again = TargetEncoder.from_dict(json.loads(json.dumps(encoder.to_dict())))
    assert again.decode(np.eye(2)[codes]).tolist() == y.tolist()
    task, flags = target_values(pd.Series([True, False, True, np.nan]).dropna(), name="flag")
    assert task == "classification" and TargetEncoder.fit(task, flags).labels == [False, True]
    _, ints = target_values(pd.Series([1.0, 2.0, 1.0]))  # integers stored as floats (a missing cell)
    assert ints.dtype == np.int64
    regression = TargetEncoder.fit("regression", np.array([1.0, 2.0, 4.0]))
    again = TargetEncoder.from_dict(json.loads(json.dumps(regression.to_dict())))
    np.testing.assert_array_equal(again.decode(np.array([[0.5]])), regression.decode(np.array([[0.5]])))
    with pytest.raises(ValueError, match=r"the label 'maybe' is not one of the classes \['no', 'yes'\]"):
        encoder.encode(np.array(["yes", "maybe"]))


def test_targets_that_cannot_be_learned_are_refused():
    with pytest.raises(ValueError, match=r"the target column 'y' holds a single class \('a'\)"):
        target_values(pd.Series(["a", "a"]), name="y")
    with pytest.raises(ValueError, match=r"the target column 'y' holds a single class \(3\)"):
        target_values(pd.Series([3, 3, 3]), "classification", name="y")
    with pytest.raises(ValueError, match=r"the target column 'y' is constant \(0.5\)"):
        target_values(pd.Series([0.5, 0.5]), "regression", name="y")
    with pytest.raises(ValueError, match="needs integer class labels"):
        target_values(pd.Series([0.5, 1.5]), "classification", name="y")
    with pytest.raises(ValueError, match=r"holds text \('a'\); regression needs numbers"):
        target_values(pd.Series(["a", "b"]), "regression", name="y")


def signal_in_categories(n: int, seed: int) -> pd.DataFrame:
    """A table whose class is decided by a categorical column (8 cities, 4 of each class) and
    a little by a numeric one; two numeric columns are noise."""
    rng = np.random.default_rng(seed)
    cities = np.array(list("ABCDEFGH"))
    city = rng.choice(cities, n)
    x = rng.normal(size=n)
    score = np.isin(city, ["A", "C", "F", "H"]) * 2.0 - 1.0 + 0.5 * x + 0.5 * rng.normal(size=n)
    return pd.DataFrame(
        {
            "city": city,
            "x": x,
            "noise1": rng.normal(size=n),
            "noise2": rng.normal(size=n),
            "y": (score > 0) * 1,
        }
    )


def accuracy_of(columns, train, test, seed: int = 0) -> float:
    """Test accuracy of one small MLP trained on the preprocessed ``columns``."""
    pre = Preprocessor(features=columns).fit(train, "y")
    X_train, X_test = pre.transform(train), pre.transform(test)
    model = sp.mlp([X_train.shape[1], 16, 2], rng=seed)
    trainer = sp.Trainer(
        model,
        sp.CrossEntropyLoss(),
        sp.Adam(model.parameters(), lr=0.01),
        batch_size=32,
        verbose=0,
        seed=seed,
    )
    trainer.fit(X_train, train["y"].to_numpy(), epochs=30)
    return float(np.mean(trainer.predict(X_test).argmax(axis=1) == test["y"].to_numpy()))


def test_the_categorical_handling_matters_measurably():
    """Issue 13: where the signal lives in the categories, the same MLP on the preprocessed
    features beats it on the numeric columns alone."""
    frame = signal_in_categories(1200, seed=0)
    train, test = frame.iloc[:900], frame.iloc[900:]
    with_categories = accuracy_of(["city", "x", "noise1", "noise2"], train, test)
    numeric_only = accuracy_of(["x", "noise1", "noise2"], train, test)
    assert with_categories >= 0.85 and numeric_only <= 0.75, (with_categories, numeric_only)
    assert with_categories - numeric_only >= 0.15, (with_categories, numeric_only)


def test_a_csv_file_goes_through_read_table_and_the_preprocessor(tmp_path):
    frame = mixed(60)
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"\xef\xbb\xbf" + frame.to_csv(sep=";", index=False).encode())
    read = read_table(path, target="label")
    assert read.index.name == "line" and read.index[0] == 2
    read, dropped = drop_missing_target(read, "label")
    assert dropped == 1
    pre = Preprocessor().fit(read, "label")
    assert roles(pre)["joined"] == "datetime" and roles(pre)["member"] == "categorical"
    assert roles(pre)["customer"] == "identifier" and roles(pre)["stars"] == "numeric"  # 5 values in 59 rows
    loaded = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    np.testing.assert_array_equal(loaded.transform(read), pre.transform(read))
