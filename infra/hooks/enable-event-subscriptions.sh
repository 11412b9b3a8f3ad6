#!/bin/sh
# azd postdeploy hook: the second half of the first `azd up`.
#
# The event subscriptions that route ARM writes to the app's functions can only be created
# once the function code is deployed (Event Grid validates an AzureFunction destination;
# Azure/bicep#11656). So the first provision runs with EVENT_SUBSCRIPTIONS_ENABLED unset
# (false); after the code is deployed this hook sets it to true and provisions again, which
# declares the subscriptions in the same Bicep, no imperative calls. Once true, every later
# `azd up` / `azd provision` keeps them declared and this hook does nothing.
set -eu

if [ "$(azd env get-value EVENT_SUBSCRIPTIONS_ENABLED 2>/dev/null || true)" = "true" ]; then
  echo "Event Grid subscriptions already enabled."
  exit 0
fi

azd env set EVENT_SUBSCRIPTIONS_ENABLED true

# A freshly deployed Flex Consumption app lists its functions a little after the deployment
# completes; retry while Event Grid does not see them yet.
attempt=1
until azd provision --no-prompt; do
  if [ "$attempt" -ge 4 ]; then
    echo "Provisioning the event subscriptions failed $attempt times. Run 'azd provision' again once the app lists its functions." >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  echo "Retrying in 60 s (attempt $attempt of 4)..." >&2
  sleep 60
done
