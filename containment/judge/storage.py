"""What makes a synthetic-data storage account or container exposed.

Property defaults follow the storage API's documented interpretation when a property is
absent: shared-key access is allowed (null means true), public network access is enabled,
the minimum TLS version is 1.0; blob public access and cross-tenant replication are off.
"""
from __future__ import annotations

import re
from datetime import timedelta

from containment.core import clock
from containment.core.ids import BLOB_CONTAINER, STORAGE_ACCOUNT
from containment.judge.rule import Context, Rule


def _properties(body: dict) -> dict:
    properties = body.get("properties")
    return properties if isinstance(properties, dict) else {}


def blob_public_access_allowed(account: dict, context: Context):
    if _properties(account).get("allowBlobPublicAccess") is True:
        return ("the account allows anonymous read access to blobs (any container set to public is "
                "readable by anyone on the internet)", {"allowBlobPublicAccess": True})
    return None


def network_open_to_internet(account: dict, context: Context):
    properties = _properties(account)
    public = properties.get("publicNetworkAccess") or "Enabled"
    default = (properties.get("networkAcls") or {}).get("defaultAction") or "Allow"
    if public == "Enabled" and default == "Allow":
        return ("the account accepts connections from any network",
                {"publicNetworkAccess": public, "networkAcls.defaultAction": default})
    return None


def shared_key_access_allowed(account: dict, context: Context):
    value = _properties(account).get("allowSharedKeyAccess")
    if value is not False:
        return ("account keys and the SAS tokens signed with them can read the data",
                {"allowSharedKeyAccess": value})
    return None


def cross_tenant_replication_allowed(account: dict, context: Context):
    if _properties(account).get("allowCrossTenantReplication") is True:
        return ("object replication to accounts in other tenants is allowed",
                {"allowCrossTenantReplication": True})
    return None


def tls_below_1_2(account: dict, context: Context):
    version = _properties(account).get("minimumTlsVersion") or "TLS1_0"
    if version in ("TLS1_0", "TLS1_1"):
        return f"the account accepts {version.replace('_', '.')} connections", {"minimumTlsVersion": version}
    return None


# sasPolicy.sasExpirationPeriod is "days.hours:minutes:seconds", such as "1.12:00:00"
# (https://learn.microsoft.com/azure/storage/common/sas-expiration-policy: "a combined number
# of days, hours, minutes, and seconds"; the az CLI's --sas-expiration-period takes DD.HH:MM:SS).
_SAS_PERIOD = re.compile(r"^(?P<days>\d+)\.(?P<hours>\d{1,2}):(?P<minutes>\d{1,2}):(?P<seconds>\d{1,2})$")


def sas_period(text: object) -> timedelta | None:
    """A SAS expiration period as a duration, or None where it is not one."""
    match = _SAS_PERIOD.match(text) if isinstance(text, str) else None
    return timedelta(**{unit: int(value) for unit, value in match.groupdict().items()}) if match else None


def sas_expiry_policy_missing(account: dict, context: Context):
    """A SAS expiration policy bounds how long a leaked SAS stays useful: without one, a SAS
    signed for years is valid for years. `Log` only records a longer SAS in the logs
    (SasExpiryStatus); `Block` refuses it."""
    policy = _properties(account).get("sasPolicy")
    limit = timedelta(hours=context.settings.sas_max_expiry_hours)
    allowed = f"{context.settings.sas_max_expiry_hours:g} hours (CONTAINMENT_SAS_MAX_EXPIRY_HOURS)"
    if not isinstance(policy, dict):
        return (f"the account has no SAS expiration policy: a SAS signed for any length of time is accepted "
                f"(at most {allowed} expected)", {"sasPolicy": None, "max_sas_expiry": allowed})
    period = sas_period(policy.get("sasExpirationPeriod"))
    if period is None:  # fail closed: a period that cannot be read bounds nothing the app can show
        return (f"the account's SAS expiration period {policy.get('sasExpirationPeriod')!r} cannot be read as "
                f"days.hours:minutes:seconds: it is not shown to be at most {allowed}",
                {"sasPolicy": policy, "max_sas_expiry": allowed})
    if period > limit:
        return (f"the account's SAS expiration policy allows a SAS valid for {policy.get('sasExpirationPeriod')!r}, "
                f"beyond {allowed}", {"sasPolicy": policy, "max_sas_expiry": allowed})
    return None


def key_expiry_policy_missing(account: dict, context: Context):
    """A key expiration policy is a rotation reminder: Azure flags keys older than its period
    (https://learn.microsoft.com/azure/storage/common/storage-account-keys-manage). It
    rotates nothing and blocks nothing, hence low."""
    if not isinstance(_properties(account).get("keyPolicy"), dict):
        return ("the account has no key expiration policy: nothing reminds anyone to rotate its access keys",
                {"keyPolicy": None})
    return None


def keys_older_than_limit(account: dict, context: Context):
    """Keys older than CONTAINMENT_KEY_MAX_AGE_DAYS, or with no creation time: an account
    whose keys were created before `keyCreationTime` existed answers null for them until each
    key is rotated once (https://learn.microsoft.com/azure/storage/common/sas-expiration-policy,
    "Do I need to rotate the account access keys first?"), so their age is unknown."""
    created = _properties(account).get("keyCreationTime") or {}
    oldest = clock.now() - timedelta(days=context.settings.key_max_age_days)
    ages = {}
    for name in ("key1", "key2"):
        moment = clock.instant(created.get(name) if isinstance(created, dict) else None)
        if moment is None:
            ages[name] = "no creation time recorded (created before keyCreationTime existed, never rotated since)"
        elif moment < oldest:
            ages[name] = f"created {created[name]}"
    if not ages:
        return None
    limit = f"{context.settings.key_max_age_days:g} days (CONTAINMENT_KEY_MAX_AGE_DAYS)"
    return (f"access key(s) {', '.join(ages)} not rotated within {limit}: every SAS signed with them stays valid "
            "until it expires", {"old_keys": ages, "keyCreationTime": created or None, "max_key_age": limit})


def scope_tag_removed(account: dict, context: Context):
    protection = context.protection
    if protection.protected_scope and not protection.tagged:
        name, value = context.settings.scope_tag
        return (f"the account lies under protected scope {protection.protected_scope} but no longer carries "
                f"the tag {name}={value}", {"tags": account.get("tags") or {}, "expected_tag": f"{name}={value}"})
    return None


def container_public_access(container: dict, context: Context):
    level = _properties(container).get("publicAccess") or "None"
    account = context.facts.get("account")
    if account is not None and _properties(account).get("allowBlobPublicAccess") is False:
        # The account refuses every anonymous request whatever the container's level
        # (https://learn.microsoft.com/azure/storage/blobs/anonymous-read-access-prevent): once
        # containment turns it off there, the containers are contained too. Absent, the
        # property's default interpretation depends on the API version that made the account
        # (true in older specs, false in newer): the container's own level decides.
        return None
    if level in ("Blob", "Container"):
        what = "its blobs" if level == "Blob" else "its blobs and the list of them"
        return f"the container lets anyone read {what} without credentials", {"publicAccess": level}
    return None


# Weaknesses (containment.judge.rule): each account setting below makes a leak easier or longer-lived,
# but reading the data still takes a key, a SAS, a granted identity or a public container, which
# other rules judge as exposures. Allowing public access admits no one until a container is public
# (storage_container_public_access, judged on every account write too); an account open to every
# network still asks every caller for a credential; a removed scope tag leaves the account protected
# by its scope and changes no one's access.
RULES = (
    Rule("storage_blob_public_access_allowed", "high", STORAGE_ACCOUNT, blob_public_access_allowed, weakness=True),
    Rule("storage_network_open_to_internet", "medium", STORAGE_ACCOUNT, network_open_to_internet, weakness=True),
    Rule("storage_shared_key_access_allowed", "medium", STORAGE_ACCOUNT, shared_key_access_allowed, weakness=True),
    Rule("storage_cross_tenant_replication_allowed", "medium", STORAGE_ACCOUNT, cross_tenant_replication_allowed,
         weakness=True),
    Rule("storage_tls_below_1_2", "medium", STORAGE_ACCOUNT, tls_below_1_2, weakness=True),
    Rule("storage_scope_tag_removed", "high", STORAGE_ACCOUNT, scope_tag_removed, weakness=True),
    # An exposure: anyone on the internet reads the container's blobs without a credential.
    Rule("storage_container_public_access", "high", BLOB_CONTAINER, container_public_access),
    # Posture: nothing is exposed yet, but a leaked key or SAS would stay useful for longer.
    Rule("storage_sas_expiry_policy_missing", "medium", STORAGE_ACCOUNT, sas_expiry_policy_missing, weakness=True),
    Rule("storage_key_expiry_policy_missing", "low", STORAGE_ACCOUNT, key_expiry_policy_missing, weakness=True),
    Rule("storage_keys_older_than_limit", "medium", STORAGE_ACCOUNT, keys_older_than_limit, weakness=True),
)
