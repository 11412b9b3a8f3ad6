"""How a protected account's data is encrypted at rest, and whether the key that encrypts it
can still be used. Pure.

The storage assess step (containment.detect.storage) reads, for an account encrypted with a
customer-managed key only, where that key is and what state it is in, and hands it over as
`context.facts["customer_key"]`: None for Microsoft-managed keys, otherwise
`{keyvaulturi, keyname, keyversion, vault, key, state, why}` where `vault` and `key` are the
ARM IDs read (None where not found) and `state` is one of KEY_STATES.

Which of these is an exposure (containment.judge.rule):
- an unusable key is: GDPR Art. 4(12) calls a breach of security leading to the accidental or
  unlawful destruction or loss of personal data a personal-data breach, and the breach
  notification guidelines (Article 29 Working Party WP250 rev.01, endorsed by the EDPB) name an
  "availability breach", an accidental or unauthorised loss of access to personal data, as one
  of its three kinds. With its customer-managed key disabled or deleted an
  account refuses every read and write of its blobs, to everyone, with 403
  (https://learn.microsoft.com/azure/storage/common/customer-managed-keys-overview#revoke-access-to-customer-managed-keys):
  the data is unavailable until a person restores the key, and a purged key destroys it. So the
  finding starts the Article 33 clock like any exposure, and is recorded only: making the key
  usable again gives access back, which is a person's decision, never the app's.
- the other three are weaknesses: the data stays encrypted at rest by Azure Storage whatever
  manages the key (https://learn.microsoft.com/azure/storage/common/storage-service-encryption),
  and none of them lets anyone read it; a key held where the app cannot look is one whose
  state and holders the app cannot vouch for, which a person must check.
"""
from __future__ import annotations

from containment.core.ids import STORAGE_ACCOUNT
from containment.judge.customer_keys import customer_key_of
from containment.judge.rule import Context, Rule

# What the assess step found the customer-managed key to be: usable, `enabled: false` in its
# attributes, gone (ARM answers 404 for it), or not seen at all (its vault is not among the
# watched subscriptions' vaults, or the app cannot read it).
KEY_STATES = ("enabled", "disabled", "deleted", "unseen")


def _encryption(account: dict) -> dict:
    encryption = ((account or {}).get("properties") or {}).get("encryption")
    return encryption if isinstance(encryption, dict) else {}


def _key_evidence(key: dict) -> dict:
    return {name: key.get(name) for name in ("keyvaulturi", "keyname", "keyversion", "vault", "key", "state", "why")}


def customer_key_unavailable(account: dict, context: Context):
    key = context.facts.get("customer_key")
    if not key or key.get("state") not in ("disabled", "deleted"):
        return None
    what = "is disabled (`enabled: false`)" if key["state"] == "disabled" else "is deleted"
    return (f"the account's customer-managed key {key.get('keyname')} in {key.get('vault')} {what}: every read and "
            "write of its blobs fails with 403 for everyone, so the data is unavailable until a person restores the "
            "key (an availability breach of personal data)", _key_evidence(key))


def customer_key_outside_watch(account: dict, context: Context):
    key = context.facts.get("customer_key")
    if not key or key.get("state") != "unseen":
        return None
    return (f"the account's customer-managed key {key.get('keyname')} at {key.get('keyvaulturi')} is not found among "
            f"what the app watches ({key.get('why')}): whether it is usable, and who can unwrap or purge it, cannot be checked",
            _key_evidence(key))


def encryption_not_customer_managed(account: dict, context: Context):
    if not context.settings.require_customer_keys or customer_key_of(account) is not None:
        return None
    encryption = _encryption(account)
    source = encryption.get("keySource") or "Microsoft.Storage"  # the spec's default
    return (f"the account is encrypted with Microsoft-managed keys (keySource {source}), where customer-managed keys "
            "are required (CONTAINMENT_REQUIRE_CUSTOMER_KEYS)",
            {"keySource": source, "keyvaultproperties": encryption.get("keyvaultproperties")})


def infrastructure_encryption_off(account: dict, context: Context):
    if not context.settings.require_infrastructure_encryption:
        return None
    value = _encryption(account).get("requireInfrastructureEncryption")
    if value is True:
        return None
    # "Infrastructure encryption cannot be enabled or disabled after the account has been created"
    # (https://learn.microsoft.com/azure/storage/common/infrastructure-encryption-enable): only
    # moving the data to a new account fixes it, so nothing here could contain it.
    return ("the account has no infrastructure encryption (a second layer of encryption at rest), which is required "
            "(CONTAINMENT_REQUIRE_INFRASTRUCTURE_ENCRYPTION); it can only be chosen when an account is created",
            {"requireInfrastructureEncryption": value})


RULES = (
    # An exposure (availability): see the module's docstring.
    Rule("storage_customer_key_unavailable", "critical", STORAGE_ACCOUNT, customer_key_unavailable),
    Rule("storage_customer_key_outside_watch", "high", STORAGE_ACCOUNT, customer_key_outside_watch, weakness=True),
    Rule("storage_encryption_not_customer_managed", "medium", STORAGE_ACCOUNT, encryption_not_customer_managed,
         weakness=True),
    Rule("storage_infrastructure_encryption_off", "low", STORAGE_ACCOUNT, infrastructure_encryption_off,
         weakness=True),
)
