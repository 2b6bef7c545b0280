"""History: filters, paging, CSV/XLSX export of all pages, opening a call."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from calls import services
from calls.models import Call
from calls.status import CallStatus
from ui import export
from ui.api_client import ApiClient, Config

pytestmark = pytest.mark.console

HISTORY = "views/history.py"


def numbers(at) -> set[str]:
    return set(at.dataframe[0].value["number"])


@pytest.fixture
def calls(make_call):
    a = make_call(to="+14155550100")
    b = make_call("sarah-prior-auth", to="+16505550199")
    c = make_call(to="+14155550111", direction="inbound", from_number="+14155550111")
    services.call_set_status(call_id=a.pk, status=CallStatus.IN_PROGRESS)
    services.call_set_status(call_id=a.pk, status=CallStatus.COMPLETED)
    services.turn_append(call_id=a.pk, speaker="caller", text="I love kubernetes clusters")
    services.call_update_outcome(call_id=b.pk, extracted_data={"reference_number": "REF-7788"})
    Call.objects.filter(pk=c.pk).update(created_at=timezone.now() - dt.timedelta(days=10))
    return a, b, c


def test_filters_return_the_right_rows(console, calls):
    at = console(HISTORY)
    assert not at.exception, at.exception
    assert numbers(at) == {"+14155550100", "+16505550199", "+14155550111"}

    at.selectbox(key="history_persona").set_value("sarah-prior-auth").run()
    assert numbers(at) == {"+16505550199"}
    at.selectbox(key="history_persona").set_value("(any)")
    at.multiselect(key="history_status").set_value(["completed"]).run()
    assert numbers(at) == {"+14155550100"}
    at.multiselect(key="history_status").set_value(["completed", "queued"]).run()
    assert len(numbers(at)) == 3
    at.multiselect(key="history_status").set_value([])
    at.selectbox(key="history_direction").set_value("inbound").run()
    assert numbers(at) == {"+14155550111"}
    at.selectbox(key="history_direction").set_value("(any)")
    at.text_input(key="history_number").set_value("650 555").run()
    assert numbers(at) == {"+16505550199"}
    at.text_input(key="history_number").set_value("")
    at.text_input(key="history_q").set_value("KUBERNETES").run()
    assert numbers(at) == {"+14155550100"}
    at.text_input(key="history_q").set_value("")
    today = timezone.localdate()
    at.date_input(key="history_dates").set_value((today - dt.timedelta(days=1), today)).run()
    assert numbers(at) == {"+14155550100", "+16505550199"}
    at.date_input(key="history_dates").set_value((today - dt.timedelta(days=10),)).run()
    assert numbers(at) == {"+14155550111"}  # one picked date: that day only
    assert not at.exception and not at.error


def test_paging_and_export_of_every_page(console, make_call, api_env, live_server):
    for i in range(27):
        make_call(to=f"+141555501{i:02d}")
    services.call_update_outcome(
        call_id=Call.objects.get(to_number="+14155550105").pk, summary="=HYPERLINK(1)"
    )
    at = console(HISTORY)
    assert "27 call(s) · page 1 of 2" in at.caption[0].value
    assert len(at.dataframe[0].value) == 25
    at.pagination[0].set_value(2).run()
    assert not at.exception, at.exception
    assert "page 2 of 2" in at.caption[0].value and len(at.dataframe[0].value) == 2
    assert [b.label for b in at.download_button] == ["Export CSV", "Export XLSX"]

    api = ApiClient(Config(base_url=live_server.url, token=api_env))
    rows = export.fetch_all(api, {"persona": "myra-recruiting"})
    assert len(rows) == 27 and len({r["id"] for r in rows}) == 27
    assert export.fetch_all(api, {"number": "55501 05"})[0]["summary"] == "=HYPERLINK(1)"

    parsed = list(csv.DictReader(io.StringIO(export.to_csv(rows).decode())))
    assert {r["to_number"] for r in parsed} == {f"+141555501{i:02d}" for i in range(27)}
    assert parsed[0].keys() == set(export.COLUMNS)
    assert parsed[0]["variables"] == '{"applicant_name": "Ann", "position": "SRE"}'

    sheet = load_workbook(io.BytesIO(export.to_xlsx(rows))).active
    table = list(sheet.values)
    assert list(table[0]) == export.COLUMNS and len(table) == 28
    summary = table[0].index("summary")
    assert "=HYPERLINK(1)" in [row[summary] for row in table[1:]]  # kept as text


def test_export_applies_the_filters(console, calls, api_env, live_server):
    api = ApiClient(Config(base_url=live_server.url, token=api_env))
    rows = export.fetch_all(api, {"status": ["completed"], "q": "kubernetes"})
    assert [r["to_number"] for r in rows] == ["+14155550100"]
    sheet = load_workbook(io.BytesIO(export.to_xlsx(rows))).active
    status = export.COLUMNS.index("status")
    assert [row[status] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["completed"]


def test_selecting_a_row_opens_the_call(console, calls):
    a, _, _ = calls
    at = console(HISTORY)
    row = list(at.dataframe[0].value["number"]).index("+14155550100")
    at.session_state["history_table"] = {"selection": {"rows": [row], "columns": []}}
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["call_id"] == str(a.uuid)
    assert at.title[0].value == "Call · +14155550100"
