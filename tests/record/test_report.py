"""The incident report a DPO reads: what leaked first, then the dataset's context and the
pre-filled risk questions, the assessment and its clock, what waits for whom, the timeline
(who caused apart from who decided), the evidence; escaped, self-contained, printable."""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timezone
from html.parser import HTMLParser

from containment.record.export import incident_html
from tests.helpers import incidents as h

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
SECTIONS = ["leak", "context", "assessment", "waiting", "timeline", "evidence", "states"]


class Page(HTMLParser):
    """The page's sections (by id) as text, and its tables as rows of cell text."""

    def __init__(self, markup: str):
        super().__init__()
        self.sections: dict[str, str] = {}
        self.tables: dict[str, list[list[list[str]]]] = {}
        self.order: list[str] = []
        self._section = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._section = attrs.get("id")
            self.order.append(self._section)
            self.sections[self._section] = ""
        elif tag == "table" and self._section:
            self.tables.setdefault(self._section, []).append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag):
        if tag == "section":
            self._section = None
        elif tag in ("td", "th") and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._section:
            self.tables[self._section][-1].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._section:
            self.sections[self._section] += data
        if self._cell is not None:
            self._cell.append(data)


def page_of(records, **incident) -> tuple[str, Page]:
    markup = incident_html(h.incident_of(records, **incident), NOW)
    return markup, Page(markup)


def text(markup: str) -> str:
    """What a reader sees: no style, no tags."""
    body = re.sub(r"<style>.*?</style>", " ", markup, flags=re.DOTALL).replace("<wbr>", "")
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


def test_what_leaked_comes_first_then_the_context_the_assessment_and_the_rest():
    markup, page = page_of(h.egress_sas_leak(reads_after=True))
    assert page.order == SECTIONS
    leak = markup.split("<section id='leak'>", 1)[1]
    sentence = leak.index("A caller from 203.0.113.77, outside the allowed networks, read between 10 and 12")
    assert sentence < leak.index("<table")  # the words, then the tables
    assert markup.index("What leaked") < markup.index("Article 33: notify the supervisory authority by")
    [datasets, callers, objects, after] = page.tables["leak"]
    assert callers[0] == ["Caller", "Credential", "Blobs", "Bytes", "Requests", "First read", "Last read"]
    assert callers[1][0] == "203.0.113.77" and callers[1][2:5] == ["12", "0.75 GiB", "12"]
    assert after[1] == ["203.0.113.77", "2", "128.0 MiB", "2026-11-24 14:21:40 UTC"]


def test_the_context_shows_the_tags_and_the_risk_questions_as_suggestions():
    _, page = page_of(h.egress_sas_leak(tags={**h.PRIVACY_TAGS, "dp-epsilon": "abc"}))
    tags, questions = page.tables["context"]
    assert ["dp-epsilon", "abc", "account tags",
            "dp-epsilon is 'abc': not a number at least 0, or none; read as no guarantee"] in tags
    assert questions[0] == ["Question", "Suggested answer", "Why"]
    art33 = next(row for row in questions if row[0].startswith("Art. 33(1)"))
    assert art33[1] == "Likely risk to individuals: notify"
    assert "Suggestions only" in page.sections["context"] and "a person decides" in page.sections["context"]


def test_the_clock_counts_down_then_runs_over():
    _, page = page_of(h.egress_sas_leak())
    assert ("Article 33: notify the supervisory authority by 2026-11-27 14:05:00 UTC (53.1 h left)"
            in " ".join(page.sections["assessment"].split()))
    late = incident_html(h.incident_of(h.egress_sas_leak()), datetime(2026, 11, 28, 9, tzinfo=timezone.utc))
    assert "Article 33: overdue by 18.9 h." in text(late)


def test_an_assessment_stops_the_clock_and_high_risk_asks_for_article_34():
    notified = {"notifiable": True, "notified_at": "2026-11-25T08:30:00Z", "reference": "DPA-2026-4411",
                "reason": "personal-data source without a privacy guarantee", "high_risk": True,
                "data_subjects_informed_at": None, "decided_by": {"id": "2f1e", "name": "dpo@contoso.example"},
                "decided_at": "2026-11-25T08:00:00Z"}
    _, page = page_of(h.egress_sas_leak(), assessment=notified)
    said = " ".join(page.sections["assessment"].split())
    assert ("Article 33 clock stopped: the supervisory authority was notified at 2026-11-25 08:30:00 UTC (reference "
            "DPA-2026-4411), 53.6 h before the deadline") in said
    assert ("Article 34: high risk. The people concerned must be informed without undue delay: no record yet that "
            "the people concerned were informed.") in said
    assert "overdue" not in said
    _, page = page_of(h.egress_sas_leak(), assessment={**notified, "data_subjects_informed_at": "2026-11-26T10:00:00Z"})
    assert "the people concerned were informed at 2026-11-26 10:00:00 UTC" in page.sections["assessment"]
    not_notifiable = {**notified, "notifiable": False, "notified_at": None, "reference": None, "high_risk": False,
                      "reason": "source held no personal data (confirmed with the owner)"}
    later = datetime(2026, 12, 1, tzinfo=timezone.utc)  # long past the deadline: it stays stopped
    markup = incident_html(h.incident_of(h.egress_sas_leak(), assessment=not_notifiable), later)
    said = text(markup)
    assert ("Article 33 clock stopped: assessed not notifiable by dpo@contoso.example at 2026-11-25 08:00:00 UTC"
            in said)
    assert "source held no personal data (confirmed with the owner)" in said
    assert "Article 34" not in said.split("Assessment and deadline", 1)[1].split("What waits for whom")[0]
    assert "overdue" not in said


def test_the_timeline_keeps_who_caused_apart_from_who_decided():
    _, page = page_of(h.role_grant(approved=True))
    [timeline] = page.tables["timeline"]
    assert timeline[0] == ["Decided at", "What, outcome, resource", "Actions", "Caused by", "Decided by", "Why"]
    held, approved = timeline[1:]
    assert (held[3], held[4]) == ("Dana Analyst", "the app")
    assert (approved[3], approved[4]) == ("", "sec-oncall@contoso.example")
    assert approved[1].startswith("approved: contained")
    _, page = page_of(h.egress_sas_leak())
    assert page.tables["timeline"][0][1][3] == "203.0.113.77"  # the egress caller caused it


def test_what_waits_for_whom_names_the_held_action_and_who_it_waits_for():
    _, page = page_of(h.egress_sas_leak())
    [waiting] = page.tables["waiting"]
    assert waiting[1][0] == "rotate_account_keys" and waiting[1][2] == "approval"
    assert waiting[1][4] == "egress-20261124T1400-754c7ddb1ae5b78e3bbb"
    _, page = page_of(h.role_grant())
    assert "Nothing waits for a person." in page.sections["waiting"]


def test_evidence_is_tables_with_the_raw_json_behind_them():
    markup, page = page_of(h.egress_sas_leak())
    evidence = markup.split("<section id='evidence'>", 1)[1].split("</section>", 1)[0]
    callers = page.tables["evidence"][0]
    assert callers[0][:2] == ["Caller", "Authentication"] and callers[1][:2] == ["203.0.113.77", "SAS"]
    assert "<details class='raw'><summary>Raw evidence (JSON)</summary><pre>" in evidence
    assert "Full evidence (JSON, sha256:5034a3a0)" in evidence
    states = markup.split("<section id='states'>", 1)[1]
    assert states.count("<details class='raw state'>") == 2  # before and after, behind details


def test_a_role_grant_report_says_what_the_grant_let_the_principal_do():
    markup, page = page_of(h.role_grant())
    said = text(markup)
    assert ("Dana Analyst granted ServicePrincipal 6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b the role Storage Blob Data "
            "Reader over synthtrain01") in said
    assert "No record of this incident holds the body of the account synthtrain01" in said
    [datasets, exposures] = page.tables["leak"]
    assert exposures[1][0] == "role grant" and exposures[1][4] == "Dana Analyst"


def test_a_hostile_name_tag_or_reason_is_escaped_everywhere():
    hostile = "<img src=x onerror=alert(1)>"
    tags = {**h.PRIVACY_TAGS, "data-owner": hostile, "synthetic-generator": "</td></tr></table><script>x()</script>",
            "dp-epsilon": "'\"><svg onload=alert(2)>"}
    records = h.egress_sas_leak(tags=tags)
    records = [replace(records[0], reason="<script>alert(3)</script>", actor={"name": "<b>Mallory</b>"})]
    records += h.public_container(metadata={"source_personal_data": "<iframe>"}, name="t&<x>")
    markup = incident_html(h.incident_of(records, assessment={
        "notifiable": False, "reason": "<style>body{display:none}</style>", "decided_by": {"name": "<u>x</u>"},
        "decided_at": "2026-11-25T08:00:00Z"}), NOW)
    for raw in ("<img", "<script", "<svg", "<iframe", "<b>", "<u>", "<x>", "<style>body", "onerror=alert(1)>"):
        assert raw not in markup, raw
    assert "&lt;img src=x onerror=alert(1)&gt;" in markup
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in markup
    assert "t&amp;&lt;x&gt;" in markup.replace("<wbr>", "")
    assert markup.count("<script") == 0 and markup.count("<style>") == 1  # the page's own style only
    assert markup.count("<table") == markup.count("</table>")


def test_the_page_is_self_contained_ascii_and_printable():
    markup, _ = page_of(h.anonymous_crowd(400))
    assert markup.isascii()  # ε and the like as character references
    for loads in ("<link", "src=", "href=", "url(", "@import", "<script"):
        assert loads not in markup, loads
    style = markup.split("<style>", 1)[1].split("</style>", 1)[0]
    printed = style.split("@media print{", 1)[1]
    assert "@page{size:A4" in style and "thead{display:table-header-group}" in printed
    assert "details.raw" in printed and "break-inside:avoid" in printed
    assert "Printed copy: the raw JSON and the resources' states before and after are left out." in markup
    # 400 callers: the tables show the first 25 and say where the rest are.
    assert "The first 25 of 400 callers; all of them are in the raw evidence." in markup


def test_a_weakness_only_incident_says_no_article_33_clock_runs_and_why_instead_of_the_deadline():
    from containment.core.records import DecisionRecord

    weak = DecisionRecord(
        key="7d3a1c5e-9b2f-4e6d-8a1c-3f5e7b9d1a03", resource_id=h.ACCOUNT_ID, outcome="reported", mode="enforce",
        reason="recorded only", event_id="7d3a1c5e-9b2f-4e6d-8a1c-3f5e7b9d1a03",
        operation="Microsoft.Storage/storageAccounts/write", rules=["storage_sas_expiry_policy_missing"],
        severity="medium", actor=h.DANA, event_time="2026-11-24T09:59:30Z", decided_at="2026-11-24T10:00:00Z",
        findings=[{"rule": "storage_sas_expiry_policy_missing", "severity": "medium", "resource_id": h.ACCOUNT_ID,
                   "summary": "the account has no SAS expiration policy", "evidence": {"sasPolicy": None},
                   "weakness": True}], recorded_at="1")
    markup, page = page_of([weak])
    shown = text(markup)
    assert "Weakened-control record: no personal-data breach shown" in shown
    assert "What was found" in shown and "What leaked" not in shown
    assert "No Article 33 clock runs." in page.sections["assessment"]
    assert "storage_sas_expiry_policy_missing" in page.sections["assessment"]
    assert "notify the supervisory authority by" not in shown and "clock running" not in markup
    assert "No assessment is needed" in page.sections["assessment"]
    assert "Risk assessment, pre-filled" not in shown and "None is asked" in page.sections["context"]
    assert "A weakened control: it shows no one able to reach the data" in page.sections["leak"]

    # Reads with a leaked SAS joining it four hours on start the clock from their own detection.
    markup, page = page_of([weak, *h.egress_sas_leak()])
    assert "Article 33: notify the supervisory authority by" in page.sections["assessment"]
    assert "72 hours after the first finding that shows the data exposed (2026-11-24 14:05:00 UTC" in text(markup)
