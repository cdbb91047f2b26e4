"""One grammar for --corruptions / --severities: robustpose corrupt, robustpose benchmark
and the Python API read the same choices the same way."""
from __future__ import annotations

import pytest

from robustpose import benchmarking
from robustpose.corruptions import (CORRUPTION_NAMES, FAMILIES, get_corruption_names,
                                    parse_corruptions, parse_severities)


def test_groups_select_the_documented_sets():
    assert parse_corruptions("benchmark") == get_corruption_names("common")
    assert parse_corruptions(None) == parse_corruptions("common") == list(CORRUPTION_NAMES[:15])
    assert parse_corruptions("all") == list(CORRUPTION_NAMES)
    assert parse_corruptions("validation") == parse_corruptions("extra") == \
        ["speckle_noise", "gaussian_blur", "spatter", "saturate"]
    for family, names in FAMILIES.items():
        assert parse_corruptions(family) == list(names)
    assert parse_corruptions("weather") == ["snow", "frost", "fog", "brightness"]
    assert parse_corruptions("none") == [] and parse_corruptions([]) == []


def test_lists_keep_first_occurrence_order_without_duplicates():
    assert parse_corruptions("fog, fog,snow") == ["fog", "snow"]
    assert parse_corruptions("blur,snow")[-1] == "snow"
    assert parse_corruptions("noise,gaussian_noise,fog") == \
        ["gaussian_noise", "shot_noise", "impulse_noise", "fog"]
    assert parse_corruptions(["contrast", "noise"]) == \
        ["contrast", "gaussian_noise", "shot_noise", "impulse_noise"]
    assert parse_corruptions(["fog,snow", "none"]) == ["fog", "snow"]
    assert len(parse_corruptions("benchmark,extra")) == 19


def test_unknown_or_blank_corruptions_give_one_line_errors_listing_the_choices():
    for bad in ("gaussian_nose", "noise,gaussian_nose", ["fog", "x"]):
        with pytest.raises(ValueError, match="unknown corruption") as info:
            parse_corruptions(bad)
        message = str(info.value)
        assert "\n" not in message and "benchmark" in message and "saturate" in message
    with pytest.raises(ValueError, match=r"unknown corruption\(s\) gaussian_nose, y"):
        parse_corruptions("gaussian_nose,fog,y")
    for blank in ("", " , "):
        with pytest.raises(ValueError, match="no corruption given"):
            parse_corruptions(blank)


def test_severities():
    assert parse_severities(None) == parse_severities("all") == parse_severities("1-5") == \
        [1, 2, 3, 4, 5]
    assert parse_severities("5,1,3") == [1, 3, 5]
    assert parse_severities("1-3,5") == [1, 2, 3, 5]
    assert parse_severities(" 2 ") == [2] == parse_severities(2)
    assert parse_severities([3, 1, 3]) == [1, 3] == parse_severities(["3", "1"])
    assert parse_severities(("1-2", 5)) == [1, 2, 5]


@pytest.mark.parametrize("bad,message", [
    ("", "no severity given"), ("x", "bad severities"), ("5-1", "bad severities"),
    ("1-", "bad severities"), ([2.5], "bad severities"), (True, "bad severities"),
    ("0", "severities must lie in 1..5"), ("2-6", "severities must lie in 1..5"),
    ("0-2", "severities must lie in 1..5"), ([6], "severities must lie in 1..5"),
    ("-1", "severities must lie in 1..5"),
])
def test_bad_severities_give_one_line_errors(bad, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_severities(bad)
    assert "\n" not in str(info.value)


def test_the_benchmark_reexports_this_grammar():
    """benchmarking keeps its names, bound to the very same functions."""
    from robustpose.benchmarking import cells

    assert benchmarking.parse_corruptions is cells.parse_corruptions is parse_corruptions
    assert benchmarking.parse_severities is cells.parse_severities is parse_severities
