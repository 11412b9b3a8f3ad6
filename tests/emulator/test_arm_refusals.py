"""The emulator refuses what ARM refuses, with ARM's status and error code, through the real
management SDK clients. Each refusal's source is named in localazure/nsg_validation.py."""
from __future__ import annotations

import copy

import pytest
from azure.core.exceptions import HttpResponseError

from tests.helpers import arm_bodies as b

NSG = b.nsg(rules=[b.security_rule("allow-training", 200, source="10.20.0.0/16")])
GROUP = NSG["name"]


def rule(**properties) -> dict:
    """A valid inbound rule at 300; keyword properties override (None removes one)."""
    body = copy.deepcopy(b.security_rule("candidate", 300, source="203.0.113.0/24")["properties"])
    for name, value in properties.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return {"properties": body}


def put(clients, body: dict, name: str = "candidate"):
    rules = clients.network(b.SUBSCRIPTION).security_rules
    return rules.begin_create_or_update(b.RG, GROUP, name, body).result()


def refusal(clients, body: dict, name: str = "candidate") -> tuple[int, str]:
    with pytest.raises(HttpResponseError) as refused:
        put(clients, body, name)
    return refused.value.status_code, refused.value.error.code


REFUSED = {
    "IPv4 and IPv6 in one rule": (
        rule(sourceAddressPrefix=None, sourceAddressPrefixes=["0.0.0.0/5", "::/0"]),
        "ResourceCannotContainAddressPrefixesFromDifferentAddressFamilies"),
    "IPv6 source and IPv4 destination": (
        rule(sourceAddressPrefix="2001:db8::/32", destinationAddressPrefix="10.20.0.0/16"),
        "ResourceCannotContainAddressPrefixesFromDifferentAddressFamilies"),
    "a service tag in a prefixes list": (
        rule(sourceAddressPrefix=None, sourceAddressPrefixes=["203.0.113.0/24", "Internet"]),
        "SecurityRuleParameterContainsUnsupportedValue"),
    "'*' in a prefixes list": (
        rule(sourceAddressPrefix=None, sourceAddressPrefixes=["*", "203.0.113.0/24"]),
        "SecurityRuleParameterContainsUnsupportedValue"),
    "a CIDR with host bits set": (rule(sourceAddressPrefix="50.206.209.68/27"), "SecurityRuleInvalidAddressPrefix"),
    "not an address": (rule(sourceAddressPrefix="any"), "SecurityRuleInvalidAddressPrefix"),
    "a prefix and prefixes both": (
        rule(sourceAddressPrefixes=["198.51.100.0/24"]), "SecurityRuleInvalidAddressPrefix"),
    "no source at all": (rule(sourceAddressPrefix=None), "SecurityRuleInvalidAddressPrefix"),
    "a port past 65535": (rule(destinationPortRange="70000"), "SecurityRuleInvalidPortRange"),
    "a reversed port range": (rule(destinationPortRange="443-80"), "SecurityRuleInvalidPortRange"),
    "ports written as a list in one string": (rule(destinationPortRange="80, 443"), "SecurityRuleInvalidPortRange"),
    "an unknown protocol": (rule(protocol="Gre"), "SecurityRuleInvalidProtocol"),
    "priority 99": (rule(priority=99), "SecurityRuleInvalidPriority"),
    "priority 4097": (rule(priority=4097), "SecurityRuleInvalidPriority"),
    "a priority taken in the same direction": (rule(priority=200), "SecurityRuleConflict"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_security_rule_arm_refuses_is_refused_with_its_code(emulator, clients, case):
    emulator.seed([NSG])
    body, code = REFUSED[case]
    assert refusal(clients, body) == (400, code)
    assert [r["name"] for r in emulator.arm.get(NSG["id"])["properties"]["securityRules"]] == ["allow-training"]


@pytest.mark.parametrize("name", ["-leading-dash", "trailing-dot.", "x" * 81, "has space", "ünicode"])
def test_a_rule_name_outside_arms_pattern_is_refused(emulator, clients, name):
    emulator.seed([NSG])
    assert refusal(clients, rule(), name=name)[1] == "InvalidResourceName"


@pytest.mark.parametrize("body", [
    rule(sourceAddressPrefix="Internet"), rule(sourceAddressPrefix="AzureCloud.WestEurope"),
    rule(sourceAddressPrefix="*", priority=200, direction="Outbound"),
    rule(sourceAddressPrefix=None, sourceAddressPrefixes=["198.51.100.7", "203.0.113.0/24"]),
    rule(sourceAddressPrefix="2001:db8::/32", destinationAddressPrefix="*"),
    rule(destinationPortRange=None, destinationPortRanges=["80", "443", "8000-8080"]),
    rule(protocol="*", destinationPortRange="0-65535"),
], ids=["Internet tag", "regional tag", "same priority other direction", "addresses and ranges", "IPv6 alone",
        "port list", "every port"])
def test_what_arm_accepts_is_accepted(emulator, clients, body):
    emulator.seed([NSG])
    assert put(clients, body).provisioning_state == "Succeeded"


def test_an_nsg_holds_at_most_1000_rules(emulator, clients):
    many = [b.security_rule(f"r{n}", 100 + n, source="10.20.0.0/16") for n in range(1000)]
    emulator.seed([b.nsg(rules=many)])
    assert refusal(clients, rule(priority=1500, direction="Outbound"), name="one-more") == (
        400, "SecurityRulesLimitReached")


def test_an_nsg_holds_at_most_4000_addresses_and_ranges(emulator, clients):
    addresses = [f"10.{n // 256}.{n % 256}.0/24" for n in range(3999)]
    wide = b.security_rule("wide", 200)
    wide["properties"].pop("sourceAddressPrefix")
    wide["properties"]["sourceAddressPrefixes"] = addresses
    emulator.seed([b.nsg(rules=[wide])])
    # 3,999 sources and the '*' destination: one more address fits, two do not.
    assert put(clients, rule(sourceAddressPrefix="198.51.100.7")).provisioning_state == "Succeeded"
    assert refusal(clients, rule(sourceAddressPrefix="198.51.100.8", priority=301), name="another") == (
        400, "SecurityRuleAddressPrefixesLimitReached")


# -- storage accounts and containers (localazure/storage_validation.py names each source) ------------------
ACCOUNT = b.storage_account(allowBlobPublicAccess=False)
ALLOWING = b.storage_account("synthopen01", allowBlobPublicAccess=True)


def storage_refusal(call) -> tuple[int, str]:
    with pytest.raises(HttpResponseError) as refused:
        call()
    return refused.value.status_code, refused.value.error.code


@pytest.mark.parametrize("level", ["Private", "Public", "none"])
def test_a_container_access_level_outside_the_enum_is_refused(emulator, clients, level):
    emulator.seed([ALLOWING, b.container(ALLOWING["id"], "training")])
    containers = clients.storage(b.SUBSCRIPTION).blob_containers
    assert storage_refusal(lambda: containers.update(b.RG, ALLOWING["name"], "training",
                                                     {"properties": {"publicAccess": level}})) == (
        400, "InvalidRequestPropertyValue")


def test_an_account_that_disallows_public_access_vetoes_a_public_container(emulator, clients):
    emulator.seed([ACCOUNT, b.container(ACCOUNT["id"], "training"), ALLOWING, b.container(ALLOWING["id"], "open")])
    containers = clients.storage(b.SUBSCRIPTION).blob_containers
    assert storage_refusal(lambda: containers.update(b.RG, ACCOUNT["name"], "training",
                                                     {"properties": {"publicAccess": "Container"}})) == (
        409, "PublicAccessNotPermitted")
    assert containers.update(b.RG, ALLOWING["name"], "open", {"properties": {"publicAccess": "Blob"}}).public_access \
        == "Blob"
    # Making a container private is never vetoed.
    assert containers.update(b.RG, ACCOUNT["name"], "training", {"properties": {"publicAccess": "None"}}) \
        .public_access == "None"


def test_an_account_patch_replaces_network_acls_as_a_whole(emulator, clients):
    with_rules = b.storage_account(networkAcls={"bypass": "AzureServices", "defaultAction": "Allow",
                                                "ipRules": [{"value": "198.51.100.0/24", "action": "Allow"}],
                                                "virtualNetworkRules": []})
    emulator.seed([with_rules])
    accounts = clients.storage(b.SUBSCRIPTION).storage_accounts
    accounts.update(b.RG, with_rules["name"], {"properties": {"networkAcls": {"defaultAction": "Deny"}}})
    assert emulator.arm.get(with_rules["id"])["properties"]["networkAcls"] == {"defaultAction": "Deny"}


def test_an_account_patch_leaves_read_only_properties_and_refuses_wrong_types(emulator, clients):
    emulator.seed([ACCOUNT])
    accounts = clients.storage(b.SUBSCRIPTION).storage_accounts
    accounts.update(b.RG, ACCOUNT["name"], {"properties": {"provisioningState": "Deleting", "minimumTlsVersion": "TLS1_2"}})
    assert emulator.arm.get(ACCOUNT["id"])["properties"].get("provisioningState") == \
        ACCOUNT["properties"].get("provisioningState")
    for properties in ({"allowBlobPublicAccess": "true"}, {"minimumTlsVersion": "TLS1_4"},
                       {"publicNetworkAccess": "Open"}, {"networkAcls": {"ipRules": []}}):
        assert storage_refusal(lambda: accounts.update(b.RG, ACCOUNT["name"], {"properties": properties})) == (
            400, "InvalidRequestPropertyValue"), properties


# -- long-running operations ------------------------------------------------------------------------------
def test_a_rule_write_is_updating_until_its_operation_is_polled_to_succeeded(emulator, clients):
    emulator.seed([NSG])
    written = put(clients, rule())
    assert written.provisioning_state == "Succeeded"  # the poller's final read, once the operation is done
    [answer] = [x for x in emulator.traffic if x.method == "PUT"]
    assert (answer.status, answer.response_body["properties"]["provisioningState"]) == (201, "Updating")
    assert "azure-asyncoperation" in {name.lower() for name in answer.response_headers}
    assert [poll.response_body["status"] for poll in emulator.polls] == ["InProgress", "Succeeded"]
    assert emulator.arm.get(NSG["id"])["properties"]["provisioningState"] == "Succeeded"


def test_a_second_write_to_an_nsg_while_an_operation_runs_is_refused_to_be_retried(emulator, clients):
    from azure.mgmt.network import NetworkManagementClient

    emulator.seed([NSG])
    rules = clients.network(b.SUBSCRIPTION).security_rules
    rules.begin_create_or_update(b.RG, GROUP, "candidate", rule(), polling=False)  # answered, not yet done
    assert emulator.arm.get(NSG["id"])["properties"]["provisioningState"] == "Updating"
    impatient = NetworkManagementClient(clients.credential, b.SUBSCRIPTION, base_url=emulator.endpoint,
                                        connection_verify=str(emulator.ca_bundle), retry_total=0)
    with pytest.raises(HttpResponseError) as refused:
        impatient.security_rules.begin_create_or_update(b.RG, GROUP, "another", rule(priority=301)).result()
    assert (refused.value.status_code, refused.value.error.code) == (429, "RetryableError")
    assert refused.value.response.headers["Retry-After"] == "1"
    # The SDK's own retry honours Retry-After and gets through once the operation is done.
    [operation] = emulator.arm.operations.values()
    operation.deadline = 0  # the first operation finishes
    assert put(clients, rule(priority=301), name="another").provisioning_state == "Succeeded"
