"""CSV export cells cannot run as spreadsheet formulas (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io

import pytest

from ui import export


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("+SUM(1,2)", "'+SUM(1,2)"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("%0A=cmd", "'%0A=cmd"),
        ("|calc", "'|calc"),
        ("  =cmd|' /C calc'!A0", "'  =cmd|' /C calc'!A0"),
        ("\u00a0=1+1", "'\u00a0=1+1"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("fine\n=cmd\r\nok", "fine\n'=cmd\r\nok"),
        ("+14155550100", "+14155550100"),
        ("-12.5", "-12.5"),
        ("a summary = fine", "a summary = fine"),
        ("", ""),
    ],
)
def test_neutralise(cell, safe):
    assert export.neutralise(cell) == safe


def test_csv_cells_are_neutralised_and_numbers_kept():
    call = {"id": "c1", "to_number": "+14155550100", "summary": "=HYPERLINK(1)", "duration": -3,
            "extracted_data": {"note": "=1+1"}, "end_reason": "@evil"}  # fmt: skip
    [row] = list(csv.DictReader(io.StringIO(export.to_csv([call]).decode())))
    assert row["summary"] == "'=HYPERLINK(1)" and row["end_reason"] == "'@evil"
    assert row["to_number"] == "+14155550100" and row["duration"] == "-3"
    assert row["extracted_data"] == '{"note": "=1+1"}'  # starts with a brace: inert
