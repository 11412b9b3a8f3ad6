"""App settings: the documented defaults, one error naming every bad value, and the local
emulator endpoint honoured for loopback only."""
from __future__ import annotations

import ipaddress
import re

import pytest

from containment.core.settings import SETTINGS, SettingsError
from tests.helpers.settings import load_settings

SUB = "0B1F6471-1BF0-4DDA-AEC3-111122223333"
RG = "/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333/resourceGroups/rg-synthetic"
ENDPOINT_REFUSED = "accepted: https://127.0.0.1:PORT (loopback only; empty in Azure)"


@pytest.fixture
def ca_bundle(tmp_path):
    path = tmp_path / "emulator-ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    return str(path)


def problems(environ: dict) -> list[str]:
    with pytest.raises(SettingsError) as raised:
        load_settings(environ)
    return raised.value.problems


# --- defaults ---------------------------------------------------------------------------------

def scenario_defaults(shared) -> dict[str, str]:
    """The 'Settings that scenarios rely on' table: name -> default ('' where it says none)."""
    text = (shared / "SCENARIOS.md").read_text()
    table = text.split("## Settings that scenarios rely on", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \|.*\| (.+?) \|$", table, re.MULTILINE)
    assert len(rows) >= 7, "the SCENARIOS.md settings table was not found"
    return {name: "" if default.startswith("none") else default.strip("`") for name, default in rows}


def test_defaults_are_the_ones_scenarios_md_documents(shared):
    documented = scenario_defaults(shared)
    ours = {setting.name: setting.default for setting in SETTINGS}
    assert {name: ours.get(name) for name in documented} == documented


def test_with_nothing_set_the_app_runs_dry_on_synthetic_tagged_resources():
    settings = load_settings({})
    assert settings.mode == "dry-run" and not settings.enforcing
    assert settings.scope_tag == ("data-classification", "synthetic")
    assert settings.subscriptions == frozenset() and settings.allowed_principals == {}
    assert settings.protected_scopes == () and settings.allowed_cidrs == ()
    assert settings.self_principal_id is None
    assert settings.auto_contain == {"storage_blob_public_access_allowed", "storage_container_public_access",
                                     "role_assignment_grants_data_access", "nsg_inbound_admits_untrusted_sources",
                                     "storage_keys_listed_by_unallowed_principal",
                                     "storage_sas_listed_by_unallowed_principal",
                                     "storage_replication_to_unprotected_destination",
                                     "key_vault_key_access_by_unallowed_principal"}
    assert settings.nsg_strategy == "deny-above"
    assert settings.role_deletion_approval_scopes == {"managementGroup", "subscription"}
    assert (settings.containment_queue, settings.ledger_table) == ("containment-requests", "decisions")
    assert (settings.local_azure_endpoint, settings.local_azure_ca_bundle) == (None, None)


def test_values_are_trimmed_and_normalised():
    settings = load_settings({
        "CONTAINMENT_MODE": " enforce ",
        "CONTAINMENT_SUBSCRIPTIONS": f" {SUB} , ,",
        "CONTAINMENT_SCOPE_TAG": " env = synthetic ",
        "CONTAINMENT_PROTECTED_SCOPES": f"{RG}/ ",
        "CONTAINMENT_ALLOWED_CIDRS": "10.20.0.5/16, 2001:db8::/32",
    })
    assert settings.enforcing
    assert settings.subscriptions == {SUB.lower()}
    assert settings.scope_tag == ("env", "synthetic")
    assert settings.protected_scopes == (RG,)
    assert settings.allowed_cidrs == (ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("2001:db8::/32"))


# --- bad values -------------------------------------------------------------------------------

def test_every_bad_setting_is_named_in_one_error_with_the_value_and_what_is_accepted():
    with pytest.raises(SettingsError) as raised:
        load_settings({
            "CONTAINMENT_MODE": "enforced",
            "CONTAINMENT_SUBSCRIPTIONS": f"{SUB},prod",
            "CONTAINMENT_SCOPE_TAG": "synthetic",
            "CONTAINMENT_SELF_PRINCIPAL_ID": "me",
            "CONTAINMENT_ALLOWED_CIDRS": "10.0.0.0/8,10.0.0.0/33",
            "CONTAINMENT_QUEUE": "Containment_Requests",
            "CONTAINMENT_PROTECTED_SCOPES": "rg-synthetic",
        })
    assert raised.value.problems == [
        "CONTAINMENT_MODE='enforced': accepted: dry-run, enforce",
        f"CONTAINMENT_SUBSCRIPTIONS='{SUB},prod': prod not a GUID; accepted: comma-separated GUIDs",
        "CONTAINMENT_SCOPE_TAG='synthetic': accepted: name=value",
        "CONTAINMENT_PROTECTED_SCOPES='rg-synthetic': rg-synthetic not an ARM ID; accepted: comma-separated "
        "subscription, resource-group or resource IDs",
        "CONTAINMENT_SELF_PRINCIPAL_ID='me': accepted: one GUID (the object ID of the app's managed identity)",
        "CONTAINMENT_ALLOWED_CIDRS='10.0.0.0/8,10.0.0.0/33': 10.0.0.0/33 not a CIDR; accepted: comma-separated "
        "CIDRs such as 10.20.0.0/16, none of them /0",
        "CONTAINMENT_QUEUE='Containment_Requests': accepted: a storage queue name (3-63 lower-case letters, "
        "digits, dashes)",
    ]
    assert str(raised.value).startswith("invalid app settings:\n  CONTAINMENT_MODE='enforced'")


@pytest.mark.parametrize("value", ["=synthetic", "data-classification=", "data-classification"])
def test_a_scope_tag_needs_both_name_and_value(value):
    assert problems({"CONTAINMENT_SCOPE_TAG": value}) == [f"CONTAINMENT_SCOPE_TAG={value!r}: accepted: name=value"]


@pytest.mark.parametrize("name", ["ab", "a--b", "-abc", "abc-", "a" * 64])
def test_queue_names_follow_the_storage_rules(name):
    assert [p.split(":")[0] for p in problems({"CONTAINMENT_QUEUE": name})] == [f"CONTAINMENT_QUEUE={name!r}"]


@pytest.mark.parametrize("value", ["0.0.0.0/0", "::/0", "10.20.0.0/16,0.0.0.0/0", "203.0.113.7/0"])
def test_allowed_cidrs_refuse_every_address(value):
    # Trusting every address would switch NSG and egress containment off without a word.
    [problem] = problems({"CONTAINMENT_ALLOWED_CIDRS": value})
    whole = value.split(",")[-1]
    assert problem == (f"CONTAINMENT_ALLOWED_CIDRS={value!r}: {whole} would trust every address on the internet; "
                       "accepted: comma-separated CIDRs such as 10.20.0.0/16, none of them /0")


def test_allowed_cidrs_name_every_bad_entry_in_one_problem():
    assert problems({"CONTAINMENT_ALLOWED_CIDRS": "10.0.0.0/33,::/0,0.0.0.0/0"}) == [
        "CONTAINMENT_ALLOWED_CIDRS='10.0.0.0/33,::/0,0.0.0.0/0': 10.0.0.0/33 not a CIDR; ::/0, 0.0.0.0/0 would "
        "trust every address on the internet; accepted: comma-separated CIDRs such as 10.20.0.0/16, none of them /0"
    ]


def test_allowed_cidrs_accept_a_short_prefix_that_is_not_every_address():
    assert load_settings({"CONTAINMENT_ALLOWED_CIDRS": "0.0.0.0/1"}).allowed_cidrs == (
        ipaddress.ip_network("0.0.0.0/1"),)


EGRESS_ACCEPTED = "accepted: severity:action+action;... with severities low, medium, high, critical"


@pytest.mark.parametrize("value, bad", [("critical", "critical"),
                                        ("high:lock_account_network;critical", "critical")])
def test_egress_containment_refuses_a_severity_without_its_colon(value, bad):
    # Read as "critical: no actions" it would silently record critical findings only.
    [problem] = problems({"CONTAINMENT_EGRESS_CONTAINMENT": value})
    assert problem.startswith(f"CONTAINMENT_EGRESS_CONTAINMENT={value!r}: {bad} not understood; {EGRESS_ACCEPTED}")


def test_egress_containment_maps_each_listed_severity_to_its_actions():
    assert load_settings({"CONTAINMENT_EGRESS_CONTAINMENT": " high : lock_account_network ; low:"}).egress_containment \
        == {"high": ("lock_account_network",), "low": ()}


def test_auto_contain_rejects_an_unknown_rule_listing_the_containable_ones():
    from containment.plan.registry import ACTIONS

    containable = sorted(rule for action in ACTIONS.values() for rule in action.fixed_rules)
    assert problems({"CONTAINMENT_AUTO_CONTAIN": "storage_container_public_access, storage_public_blobs"}) == [
        "CONTAINMENT_AUTO_CONTAIN='storage_container_public_access, storage_public_blobs': storage_public_blobs "
        f"cannot be contained automatically; accepted: comma-separated rule IDs from {', '.join(containable)}"
    ]


def test_auto_contain_refuses_a_rule_that_has_no_containment_action():
    [problem] = problems({"CONTAINMENT_AUTO_CONTAIN": "storage_scope_tag_removed"})
    assert "storage_scope_tag_removed cannot be contained automatically" in problem


def test_auto_contain_can_name_any_known_rule_or_none():
    assert load_settings({"CONTAINMENT_AUTO_CONTAIN": "storage_tls_below_1_2"}).auto_contain == {"storage_tls_below_1_2"}
    assert load_settings({"CONTAINMENT_AUTO_CONTAIN": ""}).auto_contain == frozenset()


# --- the local emulator endpoint --------------------------------------------------------------

@pytest.mark.parametrize("endpoint", [
    pytest.param("http://127.0.0.1:8443", id="plain-http-loopback"),
    pytest.param("https://10.0.0.1:8443", id="private-address"),
    pytest.param("https://example.com", id="public-name"),
    pytest.param("https://127.0.0.1.evil.com", id="loopback-look-alike-name"),
    pytest.param("https://127.0.0.1@evil.com", id="loopback-as-userinfo"),
    pytest.param("https://localhost.evil.com", id="localhost-prefix"),
    pytest.param("https://0.0.0.0:8443", id="any-address"),
    pytest.param("https://127.0.0.1:8443/subscriptions", id="with-a-path"),
    pytest.param("127.0.0.1:8443", id="no-scheme"),
])
def test_an_endpoint_that_is_not_loopback_https_is_refused(endpoint, ca_bundle):
    assert problems({"LOCAL_AZURE_ENDPOINT": endpoint, "LOCAL_AZURE_CA_BUNDLE": ca_bundle}) == [
        f"LOCAL_AZURE_ENDPOINT={endpoint!r}: {ENDPOINT_REFUSED}"
    ]


@pytest.mark.parametrize("endpoint, honoured", [
    ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
    ("https://127.0.0.2:8443/", "https://127.0.0.2:8443"),
    ("https://[::1]:443", "https://[::1]:443"),
    ("https://localhost", "https://localhost"),
    ("https://LOCALHOST:9000", "https://LOCALHOST:9000"),
])
def test_a_loopback_https_endpoint_is_honoured_with_its_ca_bundle(endpoint, honoured, ca_bundle):
    settings = load_settings({"LOCAL_AZURE_ENDPOINT": endpoint, "LOCAL_AZURE_CA_BUNDLE": ca_bundle})
    assert (settings.local_azure_endpoint, settings.local_azure_ca_bundle) == (honoured, ca_bundle)


def test_an_endpoint_without_a_ca_bundle_is_refused():
    assert problems({"LOCAL_AZURE_ENDPOINT": "https://127.0.0.1:8443"}) == [
        "LOCAL_AZURE_ENDPOINT and LOCAL_AZURE_CA_BUNDLE: set both (local emulator) or neither (Azure)"
    ]


def test_a_ca_bundle_without_an_endpoint_is_refused(ca_bundle):
    assert problems({"LOCAL_AZURE_CA_BUNDLE": ca_bundle}) == [
        "LOCAL_AZURE_ENDPOINT and LOCAL_AZURE_CA_BUNDLE: set both (local emulator) or neither (Azure)"
    ]


def test_a_ca_bundle_that_is_not_a_file_is_refused(tmp_path):
    missing = str(tmp_path / "missing.pem")
    assert problems({"LOCAL_AZURE_ENDPOINT": "https://127.0.0.1:8443", "LOCAL_AZURE_CA_BUNDLE": missing}) == [
        f"LOCAL_AZURE_CA_BUNDLE={missing!r}: accepted: the path of the emulator's CA certificate (PEM)"
    ]


def test_the_endpoint_pairing_problem_is_listed_alongside_other_bad_settings():
    assert problems({"CONTAINMENT_MODE": "enforced", "LOCAL_AZURE_ENDPOINT": "https://127.0.0.1:8443"}) == [
        "CONTAINMENT_MODE='enforced': accepted: dry-run, enforce",
        "LOCAL_AZURE_ENDPOINT and LOCAL_AZURE_CA_BUNDLE: set both (local emulator) or neither (Azure)",
    ]


# --- the allowlist with expiries --------------------------------------------------------------

def test_allowlist_entries_may_carry_an_expiry():
    from datetime import datetime, timezone

    allowed = load_settings({"CONTAINMENT_ALLOWED_PRINCIPALS":
                             "1A2B3C4D-5E6F-4A7B-8C9D-0E1F2A3B4C5D@2026-12-31, "
                             "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e@2026-12-31T18:00:00Z,"
                             "3c4d5e6f-7a8b-4c9d-8e0f-2a3b4c5d6e7f"}).allowed_principals
    assert allowed == {
        "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d": datetime(2027, 1, 1, tzinfo=timezone.utc),  # through Dec 31
        "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e": datetime(2026, 12, 31, 18, tzinfo=timezone.utc),
        "3c4d5e6f-7a8b-4c9d-8e0f-2a3b4c5d6e7f": None,
    }


def test_an_allowlist_entry_with_a_bad_expiry_is_named():
    [problem] = problems({"CONTAINMENT_ALLOWED_PRINCIPALS": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d@next-friday"})
    assert "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d@next-friday not understood" in problem
    [local] = problems({"CONTAINMENT_ALLOWED_PRINCIPALS": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d@2026-12-31T18:00:00"})
    assert "not understood" in local  # a time without a zone is ambiguous


def test_role_deletion_approval_scopes_are_validated():
    assert load_settings({"CONTAINMENT_ROLE_DELETION_APPROVAL_SCOPES": ""}).role_deletion_approval_scopes == frozenset()
    [problem] = problems({"CONTAINMENT_ROLE_DELETION_APPROVAL_SCOPES": "subscription,tenant"})
    assert "tenant unknown" in problem


@pytest.mark.parametrize("split", ["0.0.0.0/1,128.0.0.0/1", "10.0.0.0/8,0.0.0.0/5,8.0.0.0/7,11.0.0.0/8,12.0.0.0/6,"
                                   "16.0.0.0/4,32.0.0.0/3,64.0.0.0/2,128.0.0.0/1", "::/1,8000::/1"])
def test_an_allowlist_that_covers_a_whole_address_space_in_any_split_is_refused(split):
    with pytest.raises(SettingsError, match="cover every IPv"):
        load_settings({"CONTAINMENT_ALLOWED_CIDRS": split})


def test_a_reserve_that_leaves_nothing_below_high_severity_is_refused_naming_what_was_set():
    assert load_settings({"CONTAINMENT_HIGH_SEVERITY_RESERVE": "0"}).high_severity_reserve == 0
    for given, blamed in (({"CONTAINMENT_MAX_ACTIONS_PER_HOUR": "5"}, "CONTAINMENT_MAX_ACTIONS_PER_HOUR"),
                          ({"CONTAINMENT_HIGH_SEVERITY_RESERVE": "20"}, "CONTAINMENT_HIGH_SEVERITY_RESERVE"),
                          ({"CONTAINMENT_MAX_ACTIONS_PER_HOUR": "3", "CONTAINMENT_HIGH_SEVERITY_RESERVE": "3"},
                           "CONTAINMENT_HIGH_SEVERITY_RESERVE")):
        with pytest.raises(SettingsError) as refused:
            load_settings(given)
        [problem] = refused.value.problems
        assert problem.startswith(f"{blamed}=") and "must be less than CONTAINMENT_MAX_ACTIONS_PER_HOUR" in problem
