# azd postdeploy hook (Windows): the same as enable-event-subscriptions.sh.
# Event subscriptions to AzureFunction destinations can only be created once the function
# code is deployed (Azure/bicep#11656): switch them on and provision again, once.
$ErrorActionPreference = 'Stop'

$enabled = (azd env get-value EVENT_SUBSCRIPTIONS_ENABLED 2>$null)
if ($LASTEXITCODE -eq 0 -and $enabled -eq 'true') {
  Write-Host 'Event Grid subscriptions already enabled.'
  exit 0
}

azd env set EVENT_SUBSCRIPTIONS_ENABLED true
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }

for ($attempt = 1; $attempt -le 4; $attempt++) {
  azd provision --no-prompt
  if ($LASTEXITCODE -eq 0) { exit 0 }
  if ($attempt -lt 4) {
    Write-Warning "Retrying in 60 s (attempt $($attempt + 1) of 4)..."
    Start-Sleep -Seconds 60
  }
}
Write-Error "Provisioning the event subscriptions failed 4 times. Run 'azd provision' again once the app lists its functions."
exit 1
