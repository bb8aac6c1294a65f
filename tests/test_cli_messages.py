"""What the commands print: compare's key numbers, the reference year 2020, and no
Python reprs or full-precision floats."""

import re

import pytest

from model.cli import _amount, _reference_date, main

NO_RED = 'extends = "tiny"\ndescription = "tiny without red envelopes"\n[red_envelope]\nstrength = 0.0\n'


@pytest.mark.slow  # two small runs and a comparison: about 10 seconds
def test_compare_prints_the_median_effect_and_interval_of_the_headline_outcomes(tmp_path,
                                                                                capsys):
    other = tmp_path / "tiny_no_red.toml"
    other.write_text(NO_RED)
    code = main(["compare", "tiny", str(other), "--agents", "500", "--replicates", "2",
                 "--point", "--workers", "1", "--out", str(tmp_path / "out"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "comparison written to" in out
    assert re.search(r"effects at 2020-12-\d\d against tiny", out)
    line = next(l for l in out.splitlines() if "WeChat Pay users" in l)
    assert re.search(r"-\d[\d,]* million \(-?[\d,.]+ to -?[\d,.]+\)", line), line
    assert "points" in next(l for l in out.splitlines() if "Alipay share" in l)
    assert "e+" not in out and "datetime" not in out and not re.search(r"\d\.\d{5,}", out)


def test_printed_summaries_speak_of_2020_when_the_run_reaches_it():
    assert _reference_date({"2019-12-25", "2020-12-30", "2025-12-31"}) == "2020-12-30"
    assert _reference_date({"2018-12-26", "2019-12-25"}) == "2019-12-25"


@pytest.mark.parametrize("value, unit, sign, text", [
    (1110.4, "million people", False, "1,110"), (-460.2, "million people", True, "-460"),
    (0.193, "million people", True, "+0.19"), (0.4891, "share", False, "48.9"),
    (0.039, "share", True, "+3.9"), (0.0, "million people", True, "0"),
])
def test_amounts_are_rounded_as_people_read_them(value, unit, sign, text):
    assert _amount(value, unit, sign) == text


def test_a_compare_mismatch_names_the_settings_without_python_reprs(tmp_path, capsys):
    other = tmp_path / "longer.toml"
    other.write_text('extends = "tiny"\n[run]\nend = 2021-06-30\n')
    code = main(["compare", "tiny", str(other), "--out", str(tmp_path), "--point"])
    err = capsys.readouterr().err
    assert code == 2 and "end 2021-06-30" in err and "end 2020-12-31" in err
    assert "datetime" not in err and "{" not in err and err.count("\n") == 1
