"""Export a list of calls to CSV and XLSX bytes."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from openpyxl import Workbook

from ui.api_client import ApiClient, Call

COLUMNS = [
    "id", "created_at", "direction", "persona", "from_number", "to_number", "status",
    "answered_by", "answered_at", "ended_at", "duration", "end_reason", "current_stage",
    "summary", "extracted_data", "variables", "recording_url",
]  # fmt: skip


# A spreadsheet runs a cell (or a line of one) starting with one of these as a formula, also after
# leading blanks (OWASP, "CSV Injection"); a plain number or E.164 phone number cannot call anything.
_FORMULA_START = re.compile(r"^[\s\u00a0]*[=+\-@|%]|^[\t\r]")
_PLAIN_NUMBER = re.compile(r"^[+-]?[0-9][0-9,.]*$")


def neutralise(cell: str) -> str:
    """`cell` made inert for a spreadsheet: each line that could start a formula gets a leading
    apostrophe, so it is read as text. defusedcsv, the maintained package for this, misses leading
    blanks, tabs and the later lines of a multi-line cell."""
    if _PLAIN_NUMBER.match(cell):
        return cell
    lines = cell.splitlines(keepends=True)
    return "".join(f"'{line}" if _FORMULA_START.match(line) else line for line in lines)


def fetch_all(client: ApiClient, filters: Mapping[str, Any]) -> list[Call]:
    """Every call matching `filters` (all pages), as the history page shows them."""
    return list(client.iter_calls(filters))


def _cell(value: object) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, int | float | str) else str(value)


def rows(calls: Iterable[Call]) -> list[list[str | int | float]]:
    return [[_cell(call.get(column)) for column in COLUMNS] for call in calls]


def to_csv(calls: Iterable[Call]) -> bytes:
    """Every text cell neutralised against formula injection (`neutralise`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows(calls):
        writer.writerow([neutralise(cell) if isinstance(cell, str) else cell for cell in row])
    return buffer.getvalue().encode("utf-8")


def to_xlsx(calls: Iterable[Call]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "calls"
    sheet.append(COLUMNS)
    for row in rows(calls):
        sheet.append(row)
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text such as "=1+1" in a summary must not become a formula
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
