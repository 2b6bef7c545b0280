"""Export a list of calls to CSV and XLSX bytes."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

from openpyxl import Workbook

from ui.api_client import ApiClient, Call

COLUMNS = [
    "id", "created_at", "direction", "persona", "from_number", "to_number", "status",
    "answered_by", "answered_at", "ended_at", "duration", "end_reason", "current_stage",
    "summary", "extracted_data", "variables", "recording_url",
]  # fmt: skip


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
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows(rows(calls))
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
