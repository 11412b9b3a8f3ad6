"""The retry policy of the app's ARM clients: the SDK's, except that a write whose
outcome is unknown is never sent again blindly.

azure-core retries a write after a 5xx answer, and a PUT or DELETE whose answer was lost
(a read error). ARM may have carried the first one out: a gateway timeout can come after
the change. Sending it again writes the resource twice (and a second key regeneration
rotates twice). So a write is retried here only where ARM did not act on it: a 429
(throttled before it was processed) or a connection that never carried the request.
Anything else raises, and containment reads the resource again to learn what happened
(containment.act.carry_out). Reads keep every SDK retry. A 429's Retry-After is waited out
with jitter (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling).
"""
from __future__ import annotations

import random

from azure.core.pipeline.policies import RetryPolicy

WRITES = frozenset({"PUT", "PATCH", "POST", "DELETE"})


class WriteSafeRetry(RetryPolicy):
    def is_retry(self, settings, response) -> bool:
        if response.http_request.method.upper() in WRITES and response.http_response.status_code != 429:
            return False
        return super().is_retry(settings, response)

    def _is_method_retryable(self, settings, request, response=None) -> bool:
        # Called without a response for a read error: the request was sent, its answer lost.
        if response is None and request.method.upper() in WRITES:
            return False
        return super()._is_method_retryable(settings, request, response)

    def _sleep_for_retry(self, response, transport) -> bool:
        # ARM's Retry-After, honoured, plus up to a second (at most the wait itself) at random, so
        # that the requests one throttling held back do not all go out again at the same moment.
        retry_after = self.get_retry_after(response)
        if retry_after:
            transport.sleep(retry_after + random.uniform(0, min(1.0, retry_after)))
            return True
        return False
