"""The dataset's privacy context from its tags, and the risk questions it pre-fills (never
the decision)."""
from __future__ import annotations

import json
import re

import pytest

from containment.record.dataset_context import DECIDES, contexts, parse, prefill
from containment.record.leak import describe
from tests.helpers import incidents as h


def context_of(records):
    incident = h.incident_of(records)
    leak = describe(incident)
    found = contexts(incident, leak["datasets"])
    return found, prefill(found, leak)


def answer(filled: dict, key: str) -> dict:
    return next(q for q in filled["questions"] if q["id"] == key)


def test_the_account_tags_give_the_context_of_the_data_read_from_its_container():
    [context], _ = context_of(h.egress_sas_leak())
    assert (context["account"], context["container"]) == ("synthtrain01", "train")
    fields = context["fields"]
    assert fields["synthetic-generator"]["value"] == "ctgan 0.10.1"
    assert fields["source-personal-data"] == {"name": "source-personal-data", "raw": "true", "value": True,
                                              "status": "valid", "source": "account tags", "problem": None}
    assert fields["dp-epsilon"]["status"] == "absent"
    assert context["sources"] == [{"what": "account tags", "resource_id": h.ACCOUNT_ID,
                                   "decision": "egress-20261124T1400-754c7ddb1ae5b78e3bbb", "state": "after"}]
    assert context["missing"] == ["no record holds the body of the container train, so its metadata is not known here"]


def test_container_metadata_in_either_spelling_wins_over_the_account_for_its_container():
    records = h.public_container(metadata={"DP_Epsilon": "0.5", "source_personal_data": "TRUE",
                                           "data-owner": "crm-team@contoso.example"})
    [context], _ = context_of(records)
    fields = context["fields"]
    assert (fields["dp-epsilon"]["value"], fields["dp-epsilon"]["source"]) == (0.5, "container metadata")
    assert fields["source-personal-data"]["value"] is True
    assert fields["data-owner"]["value"] == "crm-team@contoso.example"
    # The account's body is in no record of this incident: said, not guessed.
    assert context["missing"] == ["no record of this incident holds the body of the account synthtrain01, so its "
                                  "tags are not known here"]


@pytest.mark.parametrize("raw", ["abc", "-1", "inf", "nan", "ε=1", "1,5"])
def test_an_unreadable_epsilon_is_named_as_invalid_and_counts_as_no_guarantee(raw):
    field = parse("dp-epsilon", raw, "account tags")
    assert field["status"] == "invalid" and field["value"] is None
    assert field["problem"] == f"dp-epsilon is {raw!r}: not a number at least 0, or none; read as no guarantee"
    found, filled = context_of(h.egress_sas_leak(tags={**h.PRIVACY_TAGS, "dp-epsilon": raw}))
    assert found[0]["problems"] == [field["problem"]]
    assert answer(filled, "dp-epsilon")["suggestion"] == "none"
    assert field["problem"] in answer(filled, "dp-epsilon")["why"]
    assert answer(filled, "art33")["suggestion"] == "notify"


def test_other_unreadable_values_are_named_and_read_as_unknown():
    assert parse("source-personal-data", "maybe")["problem"] == (
        "source-personal-data is 'maybe': not true, false or unknown; read as unknown")
    assert parse("dp-delta", "2")["status"] == "invalid"
    assert parse("dp-epsilon", "None")["value"] == "none"
    assert parse("source-special-categories", "unknown")["value"] is None


@pytest.mark.parametrize("tags", ["not a dict", ["dp-epsilon", "1"], None, {"dp-epsilon": {"nested": 1}}])
def test_tags_of_any_shape_do_not_break_the_reading(tags):
    records = h.egress_sas_leak()
    body = records[0].after[h.ACCOUNT_ID]
    body["tags"] = tags
    records[0].before[h.ACCOUNT_ID]["tags"] = tags
    found, filled = context_of(records)
    assert len(found) == 1 and filled["questions"]


def test_a_role_grant_whose_records_hold_no_account_body_leaves_every_answer_unknown():
    [context], filled = context_of(h.role_grant())
    assert context["account"] == "synthtrain01" and not context["tagged"]
    assert answer(filled, "source-personal-data")["suggestion"] == "unknown"
    art33 = answer(filled, "art33")
    assert art33["suggestion"] == "unknown: find out"
    assert "until it is known, the 72 hours run as for personal data" in art33["why"]
    assert answer(filled, "read")["suggestion"] == "exposed"


def with_tags(**tags):
    return context_of(h.egress_sas_leak(tags={"data-classification": "synthetic",
                                              **{k.replace("_", "-"): v for k, v in tags.items()}}))[1]


def test_personal_data_without_a_privacy_guarantee_suggests_notifying():
    filled = with_tags(source_personal_data="true")
    art33 = answer(filled, "art33")
    assert (art33["answer"], art33["suggestion"]) == ("Likely risk to individuals: notify", "notify")
    assert "the data was read" in art33["why"]


def test_a_strong_guarantee_lowers_the_risk_and_leaves_the_decision_to_a_person():
    art33 = answer(with_tags(source_personal_data="true", dp_epsilon="1"), "art33")
    assert art33["suggestion"] == "lower risk: a person decides"
    assert "if you assess it not notifiable, record why (Art. 33(5))" in art33["why"]
    assert answer(with_tags(source_personal_data="true", dp_epsilon="1"), "dp-epsilon")["suggestion"] == "strong"


def test_a_loose_guarantee_leans_to_notifying():
    filled = with_tags(source_personal_data="true", dp_epsilon="8", dp_delta="1e-6")
    assert answer(filled, "art33")["suggestion"] == "lean to notify"
    assert answer(filled, "dp-epsilon")["answer"].startswith("Differential privacy, ε = 8, δ = 1e-06")
    assert answer(with_tags(source_personal_data="true", dp_epsilon="20"), "dp-epsilon")["suggestion"] == "weak"


def test_no_personal_data_in_the_source_suggests_unlikely_and_still_asks_to_confirm():
    art33 = answer(with_tags(source_personal_data="false", dp_epsilon="none"), "art33")
    assert art33["suggestion"] == "unlikely: a person confirms"
    assert "confirm with the data owner before relying on a tag" in art33["why"]
    assert "the breach is documented either way (Art. 33(5))" in art33["why"]


def test_unknown_personal_data_says_unknown():
    assert answer(with_tags(source_personal_data="unknown"), "art33")["suggestion"] == "unknown: find out"
    assert answer(with_tags(), "source-personal-data")["answer"] == "Unknown (synthtrain01/train)"


def test_special_categories_without_a_strong_guarantee_suggest_informing_the_people_concerned():
    assert answer(with_tags(source_personal_data="true", source_special_categories="true"),
                  "art34")["suggestion"] == "consider informing"
    assert answer(with_tags(source_personal_data="true", source_special_categories="true", dp_epsilon="0.5"),
                  "art34")["suggestion"] == "not suggested"
    assert answer(with_tags(source_personal_data="true"), "art34")["suggestion"] == "unknown"


def test_the_riskiest_dataset_decides_the_suggestion():
    safe = h.egress_sas_leak(tags={"source-personal-data": "false"})
    risky = h.public_container(metadata={"source_personal_data": "true"})
    found, filled = context_of(safe + risky)
    assert {(c["account"], c["container"]) for c in found} == {("synthtrain01", "train"),
                                                                ("synthtrain01", "training")}
    assert filled["context"]["personal_data"] is True
    assert filled["context"]["personal_data_from"] == ["synthtrain01/training"]
    assert answer(filled, "art33")["suggestion"] == "notify"


def test_the_prefill_suggests_and_never_decides():
    for records in (h.egress_sas_leak(), h.role_grant(), h.public_container(metadata={"dp_epsilon": "0.1"})):
        _, filled = context_of(records)
        assert filled["note"] == DECIDES
        text = json.dumps(filled)
        assert '"notifiable"' not in text and '"high_risk"' not in text
        assert all(q["why"] for q in filled["questions"])


def test_the_readme_documents_every_tag_the_report_reads():
    from containment.record.dataset_context import TAGS
    from localazure.shared import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `([a-z-]+)` \| `([a-z_]+)` \|", readme.split("#### Dataset privacy tags", 1)[1],
                      re.MULTILINE)
    assert rows == [(name, name.replace("-", "_")) for name in TAGS]
