"""ARM resource IDs: what parses, how IDs compare, and what is refused before it reaches a URL."""
from __future__ import annotations

import pytest

from containment.core.ids import BLOB_CONTAINER, MAX_LENGTH, STORAGE_ACCOUNT, MalformedResourceId, parse_resource_id

SUB = "0b1f6471-1bf0-4dda-aec3-111122223333"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-synthetic"
ACCOUNT = f"{RG}/providers/Microsoft.Storage/storageAccounts/synthtrain01"
CONTAINER = f"{ACCOUNT}/blobServices/default/containers/training"
ASSIGNMENT = f"{ACCOUNT}/providers/Microsoft.Authorization/roleAssignments/7d3c1f0e-2a4b-4c5d-9e8f-0a1b2c3d4e5f"


# --- well-formed IDs -------------------------------------------------------------------------

def test_a_subscription_id_parses_with_no_group_or_resource():
    parsed = parse_resource_id(f"/subscriptions/{SUB.upper()}")
    assert parsed.subscription == SUB  # normalised to lower case for comparing
    assert (parsed.resource_group, parsed.provider, parsed.types, parsed.names) == (None, None, (), ())
    assert parsed.name == ""


def test_a_resource_group_id_parses():
    parsed = parse_resource_id(RG)
    assert (parsed.subscription, parsed.resource_group, parsed.provider) == (SUB, "rg-synthetic", None)


def test_a_storage_account_id_parses_into_provider_type_and_name():
    parsed = parse_resource_id(ACCOUNT)
    assert parsed.provider == "Microsoft.Storage"
    assert parsed.type == STORAGE_ACCOUNT
    assert parsed.name == "synthtrain01"
    assert parsed.text == ACCOUNT


def test_a_blob_container_id_parses_as_a_child_resource():
    parsed = parse_resource_id(CONTAINER)
    assert parsed.types == ("storageAccounts", "blobServices", "containers")
    assert parsed.names == ("synthtrain01", "default", "training")
    assert parsed.is_type(BLOB_CONTAINER) and not parsed.is_type(STORAGE_ACCOUNT)


def test_a_role_assignment_at_a_resource_scope_parses_and_lies_within_the_resource():
    parsed = parse_resource_id(ASSIGNMENT)
    assert parsed.text == ASSIGNMENT
    assert (parsed.subscription, parsed.resource_group) == (SUB, "rg-synthetic")
    assert parsed.name == "7d3c1f0e-2a4b-4c5d-9e8f-0a1b2c3d4e5f"
    assert parsed.is_within(ACCOUNT)


def test_a_role_assignment_at_a_resource_scope_has_the_role_assignment_type():
    assert parse_resource_id(ASSIGNMENT).is_type("Microsoft.Authorization/roleAssignments")


# --- comparing --------------------------------------------------------------------------------

def test_ids_compare_case_insensitively_but_keep_their_spelling():
    from_event = parse_resource_id(ACCOUNT.replace("/resourceGroups/", "/resourcegroups/"))
    from_arm = parse_resource_id(ACCOUNT)
    assert from_event.key == from_arm.key
    assert from_event.text != from_arm.text
    assert from_event.resource_group == "rg-synthetic"
    assert from_event.is_type("microsoft.storage/STORAGEACCOUNTS")


def test_is_within_its_group_its_subscription_and_itself_in_any_case_and_with_a_trailing_slash():
    container = parse_resource_id(CONTAINER)
    assert container.is_within(ACCOUNT)
    assert container.is_within(RG.replace("/resourceGroups/", "/resourcegroups/").upper() + "/")
    assert container.is_within(f"/subscriptions/{SUB}")
    assert container.is_within(CONTAINER)


def test_is_within_does_not_match_a_sibling_that_shares_a_name_prefix():
    account = parse_resource_id(ACCOUNT)
    assert not account.is_within(RG + "-other")
    assert not account.is_within(f"{RG}-other/providers/Microsoft.Storage/storageAccounts/synthtrain01")
    assert not parse_resource_id(ACCOUNT + "x").is_within(ACCOUNT)
    assert not account.is_within(CONTAINER)  # a parent is not within its child


def test_ancestor_two_levels_up_from_a_container_is_its_account():
    account = parse_resource_id(CONTAINER).ancestor(2)
    assert account.key == ACCOUNT.lower()
    assert account.is_type(STORAGE_ACCOUNT) and account.name == "synthtrain01"


def test_ancestor_beyond_the_top_resource_is_refused():
    with pytest.raises(ValueError, match="has no resource 3 levels up"):
        parse_resource_id(CONTAINER).ancestor(3)
    with pytest.raises(ValueError, match="has no resource 1 levels up"):
        parse_resource_id(ACCOUNT).ancestor(1)


# --- refused ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    pytest.param(f"{RG}/providers/Microsoft.Storage/storageAccounts/..", id="dotdot-name"),
    pytest.param(f"/subscriptions/{SUB}/resourceGroups/..", id="dotdot-group"),
    pytest.param(f"{ACCOUNT}/blobServices/./containers/x", id="dot-name"),
    pytest.param(f"{ACCOUNT}/../../otherRg", id="dotdot-type-and-name"),
    pytest.param(f"{CONTAINER}/../../..", id="dotdot-odd-segments"),
])
def test_traversal_segments_are_refused(text):
    with pytest.raises(MalformedResourceId):
        parse_resource_id(text)


def test_a_dotdot_segment_that_matches_the_pattern_is_refused_with_the_reason():
    with pytest.raises(MalformedResourceId, match=r"has a '\.' or '\.\.' segment"):
        parse_resource_id(f"{RG}/providers/Microsoft.Storage/storageAccounts/..")


@pytest.mark.parametrize("text", [
    pytest.param(ACCOUNT + "?api-version=2023-05-01", id="query"),
    pytest.param(ACCOUNT + "#fragment", id="fragment"),
    pytest.param(ACCOUNT.replace("/storageAccounts/", "/storageAccounts%2f"), id="encoded-slash-lower"),
    pytest.param(f"{RG}/providers/Microsoft.Storage/storageAccounts/a%2F..%2Fb", id="encoded-traversal"),
    pytest.param(ACCOUNT.replace("synthtrain01", "synth train01"), id="space"),
    pytest.param(ACCOUNT.replace("synthtrain01", "synth\ttrain01"), id="tab"),
    pytest.param(ACCOUNT.replace("synthtrain01", "synth\x00train01"), id="nul"),
    pytest.param(ACCOUNT + "\r\nX-Injected: 1", id="crlf-header"),
    pytest.param(ACCOUNT + "//", id="empty-segment"),
    pytest.param(ACCOUNT[1:], id="no-leading-slash"),
    pytest.param("/subscriptions/not-a-guid/resourceGroups/rg", id="subscription-not-a-guid"),
    pytest.param(f"{RG}/providers/Microsoft.Storage", id="provider-without-type"),
    pytest.param(f"{ACCOUNT}/blobServices", id="type-without-name"),
    pytest.param("https://management.azure.com" + ACCOUNT, id="absolute-url"),
    pytest.param("", id="empty"),
])
def test_ids_that_are_not_well_formed_are_refused(text):
    with pytest.raises(MalformedResourceId, match="is not a well-formed ARM resource ID"):
        parse_resource_id(text)


@pytest.mark.parametrize("text", [
    pytest.param(ACCOUNT + "\n", id="account"),
    pytest.param(f"/subscriptions/{SUB}\n", id="subscription"),
])
def test_a_trailing_newline_is_refused(text):
    with pytest.raises(MalformedResourceId):
        parse_resource_id(text)


@pytest.mark.parametrize("subscription", [
    pytest.param(SUB.replace("a", "\u0430", 1), id="cyrillic-a"),
    pytest.param(SUB.replace("0", "\uff10", 1), id="fullwidth-zero"),
    pytest.param(SUB.replace("-", "\u2010", 1), id="unicode-hyphen"),
    pytest.param(SUB.replace("1", "\u0661", 1), id="arabic-indic-one"),
])
def test_look_alike_characters_in_the_subscription_are_refused(subscription):
    with pytest.raises(MalformedResourceId, match="has non-ASCII characters"):
        parse_resource_id(f"/subscriptions/{subscription}/resourceGroups/rg-synthetic")


def test_an_id_longer_than_arm_allows_is_refused_with_its_length():
    long_id = f"{RG}/providers/Microsoft.Storage/storageAccounts/" + "a" * MAX_LENGTH
    with pytest.raises(MalformedResourceId,
                       match=f"resource ID is {len(long_id)} characters long; ARM IDs are at most {MAX_LENGTH}"):
        parse_resource_id(long_id)


def test_an_id_of_exactly_the_maximum_length_parses():
    prefix = f"{RG}/providers/Microsoft.Storage/storageAccounts/"
    text = prefix + "a" * (MAX_LENGTH - len(prefix))
    assert parse_resource_id(text).name == "a" * (MAX_LENGTH - len(prefix))


@pytest.mark.parametrize("value, type_name", [(None, "NoneType"), (42, "int"), (ACCOUNT.encode(), "bytes"),
                                              ([ACCOUNT], "list"), ({"id": ACCOUNT}, "dict")])
def test_non_strings_are_refused_naming_their_type(value, type_name):
    with pytest.raises(MalformedResourceId, match=f"a resource ID must be a string, got {type_name}$"):
        parse_resource_id(value)
