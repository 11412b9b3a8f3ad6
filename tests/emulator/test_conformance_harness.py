"""localazure.conformance: Microsoft's oav over traffic files, on the samples in ../shared."""
from __future__ import annotations

import json
import shutil

import pytest

from localazure.conformance import validate_traffic, write_traffic_file

# Each bad sample and what oav must say about it: (code, request or response, JSON path).
BAD_SAMPLES = {
    "authorization_roleassignment_get_bad_response.json": [
        ("INVALID_FORMAT", "response", "$.properties.createdOn"),
    ],
    "authorization_roleassignment_put_bad_request.json": [
        ("INVALID_TYPE", "request", "$.properties.principalId"),
    ],
    "loganalytics_query_bad.json": [
        ("OBJECT_MISSING_REQUIRED_PROPERTY", "request", "$.query"),
        ("OBJECT_MISSING_REQUIRED_PROPERTY", "response", "$.tables[0].rows"),
    ],
    "network_securityrule_put_bad_request.json": [
        ("OBJECT_MISSING_REQUIRED_PROPERTY", "request", "$.properties.access"),
        ("INVALID_TYPE", "request", "$.properties.priority"),
    ],
    "storage_account_patch_allowBlobPublicAccess_string.json": [
        ("INVALID_TYPE", "request", "$.properties.allowBlobPublicAccess"),
    ],
    "storage_account_patch_bad_response.json": [
        ("OBJECT_ADDITIONAL_PROPERTIES", "response", "$.properties.notInSpec"),
        ("INVALID_TYPE", "response", "$.properties.minimumTlsVersion"),
    ],
    "storage_container_patch_bad_publicAccess.json": [
        ("ENUM_MISMATCH", "request", "$.properties.publicAccess"),
    ],
}


@pytest.fixture(scope="module")
def samples(shared):
    return shared / "azure-specs" / "oav-traffic-samples"


@pytest.fixture(scope="module")
def bad_report(samples):
    return validate_traffic(samples / "bad")


def test_good_samples_validate_clean(samples):
    report = validate_traffic(samples / "good")

    assert report.ok, str(report)
    assert report.files_checked == len(list((samples / "good").glob("*.json")))
    assert {"StorageAccounts_Update", "Query_Execute", "RoleAssignments_Get"} <= (
        report.operations_covered
    )


@pytest.mark.parametrize("name", sorted(BAD_SAMPLES))
def test_bad_sample_is_reported_at_the_offending_property(bad_report, name):
    found = {(f.code, f.source, f.path) for f in bad_report.findings if f.file == name}

    assert set(BAD_SAMPLES[name]) <= found, str(bad_report)


def test_every_bad_sample_has_a_finding(samples, bad_report):
    files = {path.name for path in (samples / "bad").glob("*.json")}

    assert not bad_report.ok
    assert files == {finding.file for finding in bad_report.findings}, str(bad_report)
    assert not bad_report.undefined


def test_written_traffic_validates_as_the_sdk_sent_it(tmp_path, samples):
    """The Log Analytics call as azure-monitor-query sends it: no api-version, a numeric
    status and no Content-Type. write_traffic_file adds what oav needs."""
    sample = json.loads((samples / "good" / "loganalytics_query.json").read_text())
    request, response = sample["liveRequest"], sample["liveResponse"]

    path = write_traffic_file(
        tmp_path, "post", request["url"].split("?")[0], {}, request["body"],
        200, {}, response["body"],
    )

    written = json.loads(path.read_text())
    assert written["liveResponse"]["statusCode"] == "200"
    assert written["liveRequest"]["url"].endswith("/query?api-version=2022-10-27")
    report = validate_traffic(tmp_path)
    assert report.ok, str(report)
    assert report.operations_covered == {"Query_Execute"}


def test_api_version_the_specs_lack_is_undefined_not_ok(tmp_path, samples):
    """An SDK sending another api-version matches no operation: that must fail, not pass."""
    shutil.copy(samples / "good" / "storage_account_patch.json", tmp_path / "current.json")
    sample = json.loads((samples / "good" / "storage_account_patch.json").read_text())
    request, response = sample["liveRequest"], sample["liveResponse"]
    write_traffic_file(
        tmp_path, request["method"], request["url"].replace("2026-09-01", "2025-06-01"),
        request["headers"], request["body"], response["statusCode"], response["headers"],
        response["body"],
    )

    report = validate_traffic(tmp_path)

    assert not report.ok
    assert not report.findings
    assert report.operations_covered == {"StorageAccounts_Update"}
    assert report.undefined == ["00001_patch_sto8596.json"]


@pytest.mark.usefixtures("shared")
def test_empty_directory_is_not_ok(tmp_path):
    report = validate_traffic(tmp_path)

    assert report.files_checked == 0
    assert not report.operations_covered
    assert not report.ok
