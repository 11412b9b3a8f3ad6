"""Management clients of any principal on the emulator: its token names the object ID, and
the principal holds what the role assignments seeded there give it (localazure/authorization.py)."""
from __future__ import annotations

from tests.helpers import arm_bodies as b


def principal_clients(emulator, object_id: str):
    from azure.core.credentials import AccessToken
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.storage import StorageManagementClient

    class Principal:
        def get_token(self, *scopes, **kwargs):
            return AccessToken(f"principal:{object_id}", 4102444800)

    options = {"base_url": emulator.endpoint, "connection_verify": str(emulator.ca_bundle), "polling_interval": 0}
    return (StorageManagementClient(Principal(), b.SUBSCRIPTION, **options),
            NetworkManagementClient(Principal(), b.SUBSCRIPTION, **options))
