"""validation.py's constraints: what each accepts comes back normalized and still fits; what
it refuses is a ValueError that names the argument, says what was expected and what came."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saddlepoint.validation import MAX_COUNT, Flag, Integer, NoneOr, OneOf, Real, SequenceOf, check_params

scalars = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.integers(-(2**62), 2**62).map(np.int64),
    st.floats(width=32).map(np.float32),
    st.booleans().map(np.bool_),
    st.just(10**400),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.lists(scalars, max_size=4).map(tuple))
bounds = st.one_of(st.none(), st.integers(-5, 5))
closed = st.sampled_from(["both", "left", "right", "neither"])


@st.composite
def constraints(draw, depth=0):
    kind = draw(
        st.sampled_from(
            ["real", "integer", "flag", "oneof", "noneor", "sequence"]
            if depth == 0
            else ["real", "integer", "flag", "oneof"]
        )
    )
    if kind == "real":
        low, high = draw(bounds), draw(bounds)
        if low is not None and high is not None and low > high:
            low, high = high, low
        if draw(st.booleans()):
            return Real(low, high, draw(closed))
        return Real(low, high, draw(closed), finite=False)
    if kind == "integer":
        low = draw(bounds)
        high = draw(st.one_of(st.just(MAX_COUNT), st.integers(low if low is not None else -5, 10)))
        return Integer(low, high)
    if kind == "flag":
        return Flag(numeric=draw(st.booleans()))
    if kind == "oneof":
        return OneOf(*draw(st.lists(st.text(min_size=1, max_size=2), min_size=1, max_size=3)))
    if kind == "noneor":
        return NoneOr(draw(constraints(depth=1)))
    return SequenceOf(
        draw(constraints(depth=1)),
        length=draw(st.one_of(st.none(), st.integers(0, 3))),
        increasing=draw(st.booleans()),
        ties=draw(st.booleans()),
        as_list=draw(st.booleans()),
    )


@settings(max_examples=400, deadline=None)
@given(constraints(), values)
def test_a_value_is_normalized_to_what_fits_or_refused_with_a_message_naming_the_argument(constraint, value):
    try:
        normalized = constraint.check("alpha", value)
    except ValueError as error:
        message = str(error)
        assert message.startswith("alpha must be ") or message.startswith("alpha[")
        assert " got " in message and not constraint.accepts(value)
        return
    assert constraint.accepts(value) and constraint.accepts(normalized)
    assert constraint.check("alpha", normalized) == normalized  # normalizing twice changes nothing


@settings(max_examples=200, deadline=None)
@given(bounds, bounds, closed, st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10, 10))
def test_real_normalizes_to_a_float_within_its_bounds(low, high, side, value):
    constraint = Real(low, high, side)
    try:
        result = constraint.check("x", value)
    except ValueError as error:
        assert str(error).startswith(f"x must be {constraint.description}, got ")
        return
    assert type(result) is float and math.isfinite(result)
    assert low is None or (result >= low if side in ("both", "left") else result > low)
    assert high is None or (result <= high if side in ("both", "right") else result < high)


@settings(max_examples=200, deadline=None)
@given(bounds, st.integers(-(2**64), 2**64) | st.booleans() | st.floats())
def test_integer_normalizes_to_an_int_in_range_and_never_takes_bools_or_floats(low, value):
    constraint = Integer(low)
    try:
        result = constraint.check("n", value)
    except ValueError as error:
        assert str(error).startswith("n must be ")
        return
    assert type(result) is int and not isinstance(value, (bool, float))
    assert (low is None or result >= low) and result <= MAX_COUNT


@pytest.mark.parametrize(
    "constraint,value,expected",
    [
        (Real(0, closed="neither"), np.float32(0.5), 0.5),
        (Real(finite=False), -math.inf, -math.inf),
        (Real(0, closed="neither", finite=False), math.inf, math.inf),
        (Integer(-1), np.int32(-1), -1),
        (Flag(numeric=True), 1, True),
        (Flag(numeric=True), np.bool_(False), False),
        (NoneOr(Integer(1)), None, None),
        (SequenceOf(Integer(1), increasing=True, ties=True, as_list=True), (2, 2, np.int64(5)), [2, 2, 5]),
        (SequenceOf(Real(0), length=2), np.array([0.5, 1.0]), (0.5, 1.0)),
    ],
)
def test_accepted_values_come_back_as_python_types(constraint, value, expected):
    result = constraint.check("v", value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    "constraint,value,message",
    [
        (Real(0, 1, closed="left"), 1, r"^momentum must be in \[0, 1\), got 1$"),
        (Real(0, closed="neither"), True, r"^momentum must be a finite number > 0, got True$"),
        (Real(finite=False), math.nan, r"^momentum must be a number \(not NaN\), got nan$"),
        (
            Real(0),
            10**400,
            r"^momentum must be a finite number >= 0 that fits a float, got an integer too large",
        ),
        (Integer(1), np.True_, r"^momentum must be a positive integer, got np.True_$"),
        (Flag(), 1, r"^momentum must be True or False, got 1$"),
        (OneOf("min", "max"), "mean", r"^momentum must be one of \['min', 'max'\], got 'mean'$"),
        (NoneOr(Integer(0)), -1, r"^momentum must be an integer >= 0 or None, got -1$"),
        (
            SequenceOf(Integer(1), increasing=True),
            [1, 0],
            r"^momentum\[1\] must be a positive integer, got 0$",
        ),
        (SequenceOf(Integer(1), increasing=True), [3, 3], r"^momentum must be increasing, got \[3, 3\]$"),
        (
            SequenceOf(Integer(1), increasing=True, ties=True),
            [3, 1],
            r"^momentum must be increasing \(ties allowed\)",
        ),
        (
            SequenceOf(Real(0), length=2, per="parameter group"),
            [0.1],
            r"^momentum must be a list of 2 values \(one per parameter group\), each a finite number >= 0, got \[0.1\]$",
        ),
        (
            SequenceOf(Real(0)),
            "ab",
            r"^momentum must be a list of values, each a finite number >= 0, got 'ab'$",
        ),
        (
            Real(0, closed="neither").described("a positive number of seconds"),
            0,
            r"^momentum must be a positive number of seconds, got 0$",
        ),
    ],
)
def test_refusals_name_the_argument_the_expectation_and_the_value(constraint, value, message):
    with pytest.raises(ValueError, match=message):
        constraint.check("momentum", value)


def test_described_leaves_the_original_as_it_was():
    seconds = Real(0, closed="neither")
    other = seconds.described("a positive number of seconds")
    assert seconds.description == "a finite number > 0" and other.check("t", 2) == 2.0


def test_check_params_checks_named_keys_keeps_the_others_and_stops_at_the_first_misfit():
    table = {"lr": Real(0, closed="neither"), "steps": Integer(1)}
    assert check_params({"lr": np.float64(0.1), "steps": np.int8(3), "name": "x"}, table) == {
        "lr": 0.1,
        "steps": 3,
        "name": "x",
    }
    with pytest.raises(ValueError, match="steps must be a positive integer, got 0"):
        check_params({"lr": 0.1, "steps": 0}, table)
    with pytest.raises(ValueError, match="closed must be one of"):
        Real(0, closed="open")
