"""The app's connections to Azure: management clients, Log Analytics, Table and Queue storage.

SDKs are imported here, lazily, on first use: importing function_app must stay cheap
(cold start). In Azure the app authenticates with its managed identity
(DefaultAzureCredential; AZURE_CLIENT_ID names the user-assigned identity). Locally,
LOCAL_AZURE_ENDPOINT points every management and Log Analytics client at the loopback
emulator, trusting only LOCAL_AZURE_CA_BUNDLE.
"""
from __future__ import annotations

import logging
import os
import time
from functools import cache, cached_property
from typing import Any, Iterator

from containment.adapters.reads import ReadCache
from containment.core.settings import Settings


class LocalAzureCredential:
    """A token for the local emulator only (settings refuse any non-loopback endpoint)."""

    def get_token(self, *scopes: str, **kwargs: Any):
        from azure.core.credentials import AccessToken

        return AccessToken("local-azure-emulator", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None):
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo("local-azure-emulator", int(time.time()) + 3600)


class AzureClients:
    """One instance per process; every client is built on first use and reused."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._management: dict[tuple[str, str], Any] = {}
        self.reads = ReadCache()  # what this instance read from ARM lately (containment.adapters.reads)

    @property
    def local(self) -> bool:
        return self.settings.local_azure_endpoint is not None

    @cached_property
    def credential(self):
        """For ARM and Log Analytics: the emulator's local token, or the managed identity."""
        return LocalAzureCredential() if self.local else self._identity

    @cached_property
    def _identity(self):
        # One credential for every client, so the chain is probed and tokens cached once.
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential(**transport_options())

    def _endpoint_options(self) -> dict[str, Any]:
        if not self.local:
            return transport_options()
        # Locally, long-running operations are polled at once; in Azure, ARM's Retry-After paces them.
        return {"base_url": self.settings.local_azure_endpoint,
                "connection_verify": self.settings.local_azure_ca_bundle, "polling_interval": 0,
                **transport_options()}

    def _client(self, kind: str, subscription_id: str):
        key = (kind, subscription_id.lower())
        if key not in self._management:
            if kind == "storage":
                from azure.mgmt.storage import StorageManagementClient as Client
            elif kind == "network":
                from azure.mgmt.network import NetworkManagementClient as Client
            else:
                from azure.mgmt.authorization import AuthorizationManagementClient as Client
            from containment.adapters.arm_limits import Signals
            from containment.adapters.arm_retry import WriteSafeRetry

            self._management[key] = Client(self.credential, subscription_id, retry_policy=WriteSafeRetry(),
                                           per_retry_policies=[Signals()], **self._endpoint_options())
        return self._management[key]

    def storage(self, subscription_id: str):
        return self._client("storage", subscription_id)

    def network(self, subscription_id: str):
        return self._client("network", subscription_id)

    def authorization(self, subscription_id: str):
        return self._client("authorization", subscription_id)

    @cached_property
    def subscriptions(self):
        """Lists the subscriptions the identity can see (tenant-level: no subscription ID)."""
        from azure.mgmt.resource.subscriptions import SubscriptionClient

        from containment.adapters.arm_limits import Signals
        from containment.adapters.arm_retry import WriteSafeRetry

        return SubscriptionClient(self.credential, retry_policy=WriteSafeRetry(), per_retry_policies=[Signals()],
                                  **self._endpoint_options())

    @cached_property
    def logs(self):
        from azure.monitor.query import LogsQueryClient

        if self.local:
            return LogsQueryClient(self.credential, endpoint=self.settings.local_azure_endpoint,
                                   connection_verify=self.settings.local_azure_ca_bundle, **transport_options())
        return LogsQueryClient(self.credential, **transport_options())

    @cached_property
    def _publisher(self):
        from azure.eventgrid import EventGridPublisherClient

        return EventGridPublisherClient(self.settings.notify_topic_endpoint, self.credential, **transport_options())

    def publish(self, notifications: list[dict]) -> None:
        """Send notifications to the topic as CloudEvents (identity-based in Azure); each is
        the CloudEvent's fields: source, type, subject, id, data."""
        from azure.core.messaging import CloudEvent

        options = {}
        if self.local:
            # This client takes a CA only per request (not from its constructor or transport),
            # and then warns that its event model ignores the option: it does not.
            options["connection_verify"] = self.settings.local_azure_ca_bundle
            logging.getLogger("azure.eventgrid._legacy._generated._serialization").setLevel(logging.ERROR)
        self._publisher.send([CloudEvent(**fields) for fields in notifications], **options)

    # -- the app's own storage account (ledger table and evidence blobs, containment queue) ----
    def table_service(self):
        from azure.data.tables import TableServiceClient

        connection, url = _storage_target("table")
        if connection:
            return TableServiceClient.from_connection_string(connection, **transport_options())
        return TableServiceClient(url, credential=self._identity, **transport_options())

    def blob_container(self, name: str):
        from azure.storage.blob import ContainerClient

        connection, url = _storage_target("blob")
        if connection:
            return ContainerClient.from_connection_string(connection, name, **transport_options())
        return ContainerClient(url, name, credential=self._identity, **transport_options())

    def queue(self, name: str, **options: Any):
        from azure.storage.queue import QueueClient

        connection, url = _storage_target("queue")
        if connection:
            return QueueClient.from_connection_string(connection, name, **transport_options(), **options)
        return QueueClient(url, name, credential=self._identity, **transport_options(), **options)


@cache
def transport_options() -> dict[str, Any]:
    """What every SDK client is built with. azure-core's requests transport trusts the
    environment by default, and requests then reads the proxy variables (twice) and looks for
    ~/.netrc on every call: a cost that grows with the number of app settings, which a
    Functions host puts in the environment (issue #20 measured 150 us a call with 44
    variables, 450 us with 144). Where no proxy is configured, the environment is not read per
    call; where one is (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY), it is, as before, so that
    NO_PROXY still keeps the identity endpoint and private endpoints off the proxy."""
    if any(os.environ.get(name) or os.environ.get(name.lower()) for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")):
        return {}
    return {"use_env_settings": False}


class Recreating:
    """A Table or Queue client that re-creates its table or queue when storage has lost it
    (TableNotFound, QueueNotFound: a table deleted by hand, an account restored, Azurite
    restarted), then repeats the call, so a long-lived instance recovers without being
    recycled. A lost table reads as empty."""

    def __init__(self, client: Any, lost: str, create: str):
        self._client, self._lost, self._create = client, lost, create

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            from azure.core.exceptions import HttpResponseError

            try:
                result = attribute(*args, **kwargs)
            except HttpResponseError as error:  # a transaction on a lost table fails as TableTransactionError
                # create_entity's 404 carries no parsed error_code (azure-data-tables 12.x): its
                # body still names the code.
                if getattr(error, "error_code", None) != self._lost and f'"{self._lost}"' not in str(error):
                    raise
                self.recreate()
                result = attribute(*args, **kwargs)
            return self._pages(result) if hasattr(result, "by_page") else result
        return call

    def recreate(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            getattr(self._client, self._create)()
        except ResourceExistsError:
            pass  # another instance re-created it first

    def _pages(self, pages: Iterator) -> Iterator:
        # Queries are lazy: the service is asked (and the loss seen) on the first iteration.
        from azure.core.exceptions import ResourceNotFoundError

        try:
            yield from pages
        except ResourceNotFoundError as error:
            if error.error_code != self._lost:
                raise


# Azurite's well-known development account, which 'UseDevelopmentStorage=true' stands for.
_DEVELOPMENT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)


def _storage_target(service: str) -> tuple[str | None, str | None]:
    """Where the app's own storage is, read as the Functions host reads `AzureWebJobsStorage`:
    a connection string locally, `(None, service URL)` for the identity-based
    `AzureWebJobsStorage__accountName` / `__<service>ServiceUri` used in Azure."""
    connection = os.environ.get("AzureWebJobsStorage", "").strip()
    if connection.lower() == "usedevelopmentstorage=true":
        return _DEVELOPMENT_STORAGE, None
    if connection:
        return connection, None
    url = os.environ.get(f"AzureWebJobsStorage__{service}ServiceUri")
    account = os.environ.get("AzureWebJobsStorage__accountName")
    if url or account:
        return None, url or f"https://{account}.{service}.core.windows.net"
    raise RuntimeError("AzureWebJobsStorage (or AzureWebJobsStorage__accountName) is not set: the app "
                       "has nowhere to keep its decision ledger and containment queue")
