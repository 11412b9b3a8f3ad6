// The whole deployment, at subscription scope: `azd up` (or `az deployment sub create`)
// deploys this file. It creates the app's resource group and everything in it, the
// least-privilege access the app needs in each watched subscription, the Event Grid
// routing of ARM writes to the app's functions, and the storage logs that egress
// detection reads. Plain resources only (no registry modules): everything here parses and
// is checked offline by tests/infra/test_infra.py.
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------
// Where and what
// ---------------------------------------------------------------------------------------

@minLength(1)
@maxLength(32)
@description('Name of the azd environment; names and tags every resource.')
param environmentName string

@minLength(1)
@description('Region of the app and its resources (one that offers Flex Consumption).')
param location string

@description('Resource group of the app. Empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Resource ID of an existing Log Analytics workspace for Application Insights and the protected accounts\' StorageBlobLogs. Empty: a new workspace in the app\'s resource group.')
param logAnalyticsWorkspaceId string = ''

@description('Comma-separated resource IDs of the storage accounts that hold synthetic data: each gets a diagnostic setting sending StorageRead/StorageWrite/StorageDelete of its blob service to the workspace, so egress detection has data.')
param protectedStorageAccountIds string = ''

@description('Comma-separated subscription IDs watched in addition to this one: each gets the containment role, an Event Grid system topic and the event subscriptions. The deploying principal needs Owner (or User Access Administrator + Contributor) there too.')
param additionalSubscriptionIds string = ''

@description('Whether the subscription the app is deployed into is watched too. false: the app lives in a subscription of its own and watches only additionalSubscriptionIds (recommended; see the README, "Who can act as the app").')
param watchAppSubscription bool = true

// Operators reach the app through App Service Authentication with Microsoft Entra ID
// (app/function.bicep, authSettings). Its app registration, with the app roles the operator
// routes require, is created and kept up to date by the azd preprovision hook
// (infra/hooks/entra_app_registration.py), which sets ENTRA_CLIENT_ID; or it is an existing
// registration whose client ID you set yourself. Required: without it the deployment fails
// rather than leave the operator routes behind function keys alone.
@minLength(36)
@maxLength(36)
@description('Application (client) ID of the Entra app registration whose tokens the app accepts (this tenant, v2.0 access tokens).')
param entraClientId string

@description('Comma-separated object IDs (users or groups of the security team) that may read the decision ledger: Storage Table Data Reader on the app\'s storage account.')
param ledgerReaderPrincipalIds string = ''

@description('Whether the Event Grid subscriptions to the app\'s functions are deployed. Creating an AzureFunction destination fails until the function code is deployed (Azure/bicep#11656): the first provision runs with false; the azd postdeploy hook (infra/hooks) sets it to true and provisions again.')
param eventSubscriptionsEnabled bool = false

@description('Comma-separated role definition IDs (GUIDs) whose assignments the app must never delete or create, on top of Owner, User Access Administrator and Role Based Access Control Administrator (enforced by an ABAC condition on the app\'s role assignment).')
param additionalProtectedRoleDefinitionIds string = ''

@description('Replication of the app\'s storage account (the decision ledger is audit evidence: zone-redundant by default; Standard_LRS where the region has no zones).')
@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_GZRS'])
param storageSkuName string = 'Standard_ZRS'

@description('Days each ledger digest stays immutable (the digest container\'s time-based retention policy): nobody, the app included, can change or delete a digest for that long. The policy is deployed unlocked; lock it to make it binding on the account\'s owners too (README, The decision ledger).')
@minValue(1)
@maxValue(146000) // https://learn.microsoft.com/en-us/azure/storage/blobs/immutable-time-based-retention-policy-overview
param ledgerDigestRetentionDays int = 365

@description('Flex Consumption: most instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption: memory of each instance (MB).')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

// Flex Consumption scales each Event Grid function and the queue-triggered `contain` on
// instances of their own, from zero: without instances kept ready, the first event after an
// idle spell waits for a cold start at the detection hop and again at the containment hop.
// https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#always-ready-instances
@description('Flex Consumption: instances kept running for each function on the containment path (each Event Grid function, and contain), so that a first event after an idle spell is judged and contained in seconds, not after cold starts. Billed whether they run or not: at 2,048 MB about 21 USD a month each, 147 USD for the seven at 1 (list price, README "Latency in Azure"). 0: none, every hop may start cold.')
@minValue(0)
param alwaysReadyInstances int = 1

// ---------------------------------------------------------------------------------------
// App settings: one parameter per setting the code reads (containment/settings.py), with
// the code's default. CONTAINMENT_SELF_PRINCIPAL_ID, CONTAINMENT_LOG_WORKSPACE_ID (and _RESOURCE_ID),
// CONTAINMENT_NOTIFY_TOPIC_ENDPOINT and CONTAINMENT_OWN_SCOPES are not parameters: they are
// this deployment's identity, workspace, notification topic and resource group. The local emulator's
// settings are for development and are never set in Azure.
// ---------------------------------------------------------------------------------------

@allowed(['dry-run', 'enforce'])
@description('CONTAINMENT_MODE: `enforce` acts; `dry-run` records what it would do and changes nothing.')
param containmentMode string = 'dry-run'

@description('CONTAINMENT_SUBSCRIPTIONS: comma-separated subscription IDs the app may act in (empty: every subscription the identity can see, i.e. the watched ones).')
param containmentSubscriptions string = ''

@description('CONTAINMENT_SCOPE_TAG: name=value of the tag that marks synthetic-data resources.')
param containmentScopeTag string = 'data-classification=synthetic'

@description('CONTAINMENT_PROTECTED_SCOPES: comma-separated resource or resource-group IDs protected with or without the tag.')
param containmentProtectedScopes string = ''

@description('CONTAINMENT_ALLOWED_PRINCIPALS: comma-separated object IDs allowed to hold data-access roles on protected scopes, each optionally @YYYY-MM-DD.')
param containmentAllowedPrincipals string = ''

@description('CONTAINMENT_ALLOWED_CIDRS: comma-separated CIDRs allowed to reach protected data; a /0 (every address) is refused.')
param containmentAllowedCidrs string = ''

@description('CONTAINMENT_CANARY_BLOBS: comma-separated account/container/blob paths of decoy blobs no job reads; any successful read of one is a critical finding.')
param containmentCanaryBlobs string = ''

@description('CONTAINMENT_SAS_MAX_EXPIRY_HOURS: longest SAS expiration period a protected account may allow (no policy, or a longer one, is a posture finding).')
param containmentSasMaxExpiryHours string = '24'

@description('CONTAINMENT_KEY_MAX_AGE_DAYS: oldest an account access key of a protected account may be (an older one, or no creation time, is a posture finding).')
param containmentKeyMaxAgeDays string = '90'

@description('CONTAINMENT_REQUIRE_CUSTOMER_KEYS: true makes a protected account encrypted with Microsoft-managed keys a posture finding.')
@allowed(['true', 'false'])
param containmentRequireCustomerKeys string = 'false'

@description('CONTAINMENT_REQUIRE_INFRASTRUCTURE_ENCRYPTION: true makes a protected account without infrastructure encryption a posture finding.')
@allowed(['true', 'false'])
param containmentRequireInfrastructureEncryption string = 'false'
@description('CONTAINMENT_VAULT_MIN_SOFT_DELETE_DAYS: shortest soft-delete retention (7 to 90 days) a Key Vault holding synthetic data keys may keep.')
param containmentVaultMinSoftDeleteDays string = '90'

@description('CONTAINMENT_QUEUE: the containment request queue (created here with its -poison queue).')
param containmentQueue string = 'containment-requests'

@description('CONTAINMENT_AUTO_CONTAIN: rule IDs whose findings are contained automatically in enforce mode.')
param containmentAutoContain string = 'storage_blob_public_access_allowed,storage_container_public_access,role_assignment_grants_data_access,nsg_inbound_admits_untrusted_sources,storage_keys_listed_by_unallowed_principal,storage_sas_listed_by_unallowed_principal,storage_replication_to_unprotected_destination,diagnostic_setting_removed,diagnostic_setting_not_sending_reads,policy_assignment_removed,policy_assignment_not_enforced,key_vault_key_access_by_unallowed_principal'

@description('CONTAINMENT_ROLE_DELETION_APPROVAL_SCOPES: scope levels at which deleting a risky role assignment is left to a person.')
param containmentRoleDeletionApprovalScopes string = 'managementGroup,subscription'

@allowed(['deny-above', 'disable-rule'])
@description('CONTAINMENT_NSG_STRATEGY: how an NSG rule that opens synthetic data is contained.')
param containmentNsgStrategy string = 'deny-above'

@description('CONTAINMENT_APPROVAL_ACTIONS: containment actions that always wait for a person.')
param containmentApprovalActions string = 'rotate_account_keys'

@description('CONTAINMENT_APPROVAL_EXPIRY_HOURS: a decision waiting for approval expires after this long.')
param containmentApprovalExpiryHours string = '24'

@description('CONTAINMENT_IMPACT_PREVIEW_DAYS: days of StorageBlobLogs the impact preview of an action held for approval reads.')
param containmentImpactPreviewDays string = '7'

@description('CONTAINMENT_RELEASE_HOURS: how long a released resource stays exempt from automatic containment.')
param containmentReleaseHours string = '24'

@description('CONTAINMENT_EXEMPTION_MAX_DAYS: longest an exemption may last, in days.')
param containmentExemptionMaxDays string = '30'

@description('CONTAINMENT_MUTE_MAX_DAYS: longest a mute of a rule\'s notifications may last, in days.')
param containmentMuteMaxDays string = '14'

@description('CONTAINMENT_MAX_ACTIONS_PER_HOUR: blast-radius limit, containment actions per rolling hour across all instances.')
param containmentMaxActionsPerHour string = '20'

@description('CONTAINMENT_HIGH_SEVERITY_RESERVE: actions of the blast-radius limit only high and critical findings may spend.')
param containmentHighSeverityReserve string = '5'

@description('CONTAINMENT_BREAK_GLASS_PER_HOUR: break-glass actions per rolling hour, apart from the automatic limit.')
param containmentBreakGlassPerHour string = '10'

@description('CONTAINMENT_ROLE_ASSIGNMENT_WAIT_SECONDS: how long a role assignment an event names is read again while ARM does not show it yet.')
param containmentRoleAssignmentWaitSeconds string = '4'

@description('CONTAINMENT_INCIDENT_WINDOW_HOURS: a finding joins the incident one of its signs (the identity that caused it, the resource, the storage account) was last seen in within this long, if that incident was detected at most 72 hours before.')
param containmentIncidentWindowHours string = '24'

@description('CONTAINMENT_CONTROLS_CACHE_SECONDS: how long an instance uses the exemptions and mutes it read before reading them again (0: on every decision).')
param containmentControlsCacheSeconds string = '10'

@allowed(['deny-by-default', 'disable-public-network-access'])
@description('CONTAINMENT_NETWORK_LOCK: how lock_account_network locks an account.')
param containmentNetworkLock string = 'deny-by-default'

@description('CONTAINMENT_EGRESS_SCHEDULE: NCRONTAB schedule of the egress scan.')
param containmentEgressSchedule string = '0 */5 * * * *'

@description('CONTAINMENT_SWEEP_SCHEDULE: NCRONTAB schedule of the drift sweep (re-judges every protected resource through ARM list calls).')
param containmentSweepSchedule string = '0 0 * * * *'

@description('CONTAINMENT_NOTIFY_SCHEDULE: NCRONTAB schedule of the notification timer (Article 33 notices, the digest of reported findings).')
param containmentNotifySchedule string = '0 5 * * * *'

@description('CONTAINMENT_EGRESS_WINDOW_MINUTES: length of one scan window.')
param containmentEgressWindowMinutes string = '5'

@description('CONTAINMENT_EGRESS_LAG_MINUTES: how long ago the newest scanned window ends.')
param containmentEgressLagMinutes string = '10'

@description('CONTAINMENT_EGRESS_MAX_WINDOWS: most windows one scan covers.')
param containmentEgressMaxWindows string = '12'

@description('CONTAINMENT_EGRESS_BASELINE_DAYS: lookback of a caller\'s baseline.')
param containmentEgressBaselineDays string = '7'

@description('CONTAINMENT_LOG_SILENCE_HOURS: hours without a StorageBlobLogs row after which a protected account that had rows is a finding (its logs stopped).')
param containmentLogSilenceHours string = '24'

@description('CONTAINMENT_EGRESS_VOLUME_FLOOR_MB: bytes read in one window never anomalous below this (MB).')
param containmentEgressVolumeFloorMb string = '2048'

@description('CONTAINMENT_EGRESS_VOLUME_SIGMAS: standard deviations above a known caller\'s baseline mean that are anomalous.')
param containmentEgressVolumeSigmas string = '4'

@description('CONTAINMENT_EGRESS_NEW_CALLER_MB: MB in one window above which a caller with no history is anomalous.')
param containmentEgressNewCallerMb string = '512'

@description('CONTAINMENT_EGRESS_ENUMERATION_BLOBS: distinct blobs in one window above which a caller is enumerating.')
param containmentEgressEnumerationBlobs string = '1000'

@description('CONTAINMENT_EGRESS_CONTAINMENT: containment per egress finding severity.')
param containmentEgressContainment string = 'critical:disable_blob_public_access+lock_account_network+revoke_user_delegation_keys+rotate_account_keys;high:lock_account_network+revoke_user_delegation_keys'

@description('CONTAINMENT_LEDGER_TABLE: the decision ledger table (created here).')
param containmentLedgerTable string = 'decisions'

@description('CONTAINMENT_EVIDENCE_CONTAINER: the blob container that keeps what a ledger entity cannot hold (created here).')
param containmentEvidenceContainer string = 'evidence'

@description('CONTAINMENT_LEDGER_CHAIN_TABLE: the table of the ledger\'s evidence chains (created here).')
param containmentLedgerChainTable string = 'decisionchains'

@description('CONTAINMENT_LEDGER_DIGEST_CONTAINER: the blob container of the chains\' digests, under a time-based immutability policy (created here).')
param containmentLedgerDigestContainer string = 'ledger-digests'

// ---------------------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var appResourceGroupName = empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
var createWorkspace = empty(logAnalyticsWorkspaceId)
var workspaceName = 'log-${resourceToken}'
var newWorkspaceId = '${subscription().id}/resourceGroups/${appResourceGroupName}/providers/Microsoft.OperationalInsights/workspaces/${workspaceName}'
var workspaceId = createWorkspace ? newWorkspaceId : logAnalyticsWorkspaceId
// Comma-separated parameters as lists: 'a, b,,c' -> ['a', 'b', 'c'] (IDs have no spaces).
var additionalSubscriptions = filter(split(replace(additionalSubscriptionIds, ' ', ''), ','), id => !empty(id))
var watchedSubscriptionIds = watchAppSubscription ? union([subscription().subscriptionId], additionalSubscriptions) : additionalSubscriptions
var protectedAccounts = filter(split(replace(protectedStorageAccountIds, ' ', ''), ','), id => !empty(id))
var ledgerReaders = filter(split(replace(ledgerReaderPrincipalIds, ' ', ''), ','), id => !empty(id))
var protectedRoles = filter(split(replace(additionalProtectedRoleDefinitionIds, ' ', ''), ','), id => !empty(id))

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: appResourceGroupName
  location: location
  tags: tags
}

module monitoring 'app/monitoring.bicep' = {
  name: 'containment-monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    createWorkspace: createWorkspace
    workspaceName: workspaceName
    workspaceId: workspaceId
    applicationInsightsName: 'appi-${resourceToken}'
  }
}

// The app: identity, storage (ledger, queues, deployment and dead-letter containers), plan,
// Function App with every app setting, notification topic.
module app 'app/function.bicep' = {
  name: 'containment-app'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    identityName: identity.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    logWorkspaceCustomerId: logsAccess.outputs.customerId
    logWorkspaceResourceId: workspaceId
    storageSkuName: storageSkuName
    ledgerReaderPrincipalIds: ledgerReaders
    ledgerDigestRetentionDays: ledgerDigestRetentionDays
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    alwaysReadyInstances: alwaysReadyInstances
    entraClientId: entraClientId
    containmentSettings: {
      CONTAINMENT_MODE: containmentMode
      CONTAINMENT_SUBSCRIPTIONS: containmentSubscriptions
      CONTAINMENT_SCOPE_TAG: containmentScopeTag
      CONTAINMENT_PROTECTED_SCOPES: containmentProtectedScopes
      CONTAINMENT_ALLOWED_PRINCIPALS: containmentAllowedPrincipals
      CONTAINMENT_ALLOWED_CIDRS: containmentAllowedCidrs
      CONTAINMENT_CANARY_BLOBS: containmentCanaryBlobs
      CONTAINMENT_SAS_MAX_EXPIRY_HOURS: containmentSasMaxExpiryHours
      CONTAINMENT_KEY_MAX_AGE_DAYS: containmentKeyMaxAgeDays
      CONTAINMENT_REQUIRE_CUSTOMER_KEYS: containmentRequireCustomerKeys
      CONTAINMENT_REQUIRE_INFRASTRUCTURE_ENCRYPTION: containmentRequireInfrastructureEncryption
      CONTAINMENT_VAULT_MIN_SOFT_DELETE_DAYS: containmentVaultMinSoftDeleteDays
      CONTAINMENT_QUEUE: containmentQueue
      CONTAINMENT_AUTO_CONTAIN: containmentAutoContain
      CONTAINMENT_ROLE_DELETION_APPROVAL_SCOPES: containmentRoleDeletionApprovalScopes
      CONTAINMENT_NSG_STRATEGY: containmentNsgStrategy
      CONTAINMENT_APPROVAL_ACTIONS: containmentApprovalActions
      CONTAINMENT_APPROVAL_EXPIRY_HOURS: containmentApprovalExpiryHours
      CONTAINMENT_IMPACT_PREVIEW_DAYS: containmentImpactPreviewDays
      CONTAINMENT_RELEASE_HOURS: containmentReleaseHours
      CONTAINMENT_EXEMPTION_MAX_DAYS: containmentExemptionMaxDays
      CONTAINMENT_MUTE_MAX_DAYS: containmentMuteMaxDays
      CONTAINMENT_MAX_ACTIONS_PER_HOUR: containmentMaxActionsPerHour
      CONTAINMENT_HIGH_SEVERITY_RESERVE: containmentHighSeverityReserve
      CONTAINMENT_BREAK_GLASS_PER_HOUR: containmentBreakGlassPerHour
      CONTAINMENT_ROLE_ASSIGNMENT_WAIT_SECONDS: containmentRoleAssignmentWaitSeconds
      CONTAINMENT_INCIDENT_WINDOW_HOURS: containmentIncidentWindowHours
      CONTAINMENT_CONTROLS_CACHE_SECONDS: containmentControlsCacheSeconds
      CONTAINMENT_NETWORK_LOCK: containmentNetworkLock
      CONTAINMENT_EGRESS_SCHEDULE: containmentEgressSchedule
      CONTAINMENT_SWEEP_SCHEDULE: containmentSweepSchedule
      CONTAINMENT_NOTIFY_SCHEDULE: containmentNotifySchedule
      CONTAINMENT_EGRESS_WINDOW_MINUTES: containmentEgressWindowMinutes
      CONTAINMENT_EGRESS_LAG_MINUTES: containmentEgressLagMinutes
      CONTAINMENT_EGRESS_MAX_WINDOWS: containmentEgressMaxWindows
      CONTAINMENT_EGRESS_BASELINE_DAYS: containmentEgressBaselineDays
      CONTAINMENT_LOG_SILENCE_HOURS: containmentLogSilenceHours
      CONTAINMENT_EGRESS_VOLUME_FLOOR_MB: containmentEgressVolumeFloorMb
      CONTAINMENT_EGRESS_VOLUME_SIGMAS: containmentEgressVolumeSigmas
      CONTAINMENT_EGRESS_NEW_CALLER_MB: containmentEgressNewCallerMb
      CONTAINMENT_EGRESS_ENUMERATION_BLOBS: containmentEgressEnumerationBlobs
      CONTAINMENT_EGRESS_CONTAINMENT: containmentEgressContainment
      CONTAINMENT_LEDGER_TABLE: containmentLedgerTable
      CONTAINMENT_EVIDENCE_CONTAINER: containmentEvidenceContainer
      CONTAINMENT_LEDGER_CHAIN_TABLE: containmentLedgerChainTable
      CONTAINMENT_LEDGER_DIGEST_CONTAINER: containmentLedgerDigestContainer
    }
  }
}

// Log Analytics: the app may query StorageBlobLogs in the workspace and nothing else
// there (a workspace-scoped assignment of a three-action custom role).
module logsAccess 'app/logs-access.bicep' = {
  name: 'containment-logs-access'
  scope: resourceGroup(split(workspaceId, '/')[2], split(workspaceId, '/')[4])
  params: {
    environmentName: environmentName
    workspaceName: last(split(workspaceId, '/'))
    principalId: identity.outputs.principalId
  }
  dependsOn: [monitoring]
}

module identity 'app/identity.bicep' = {
  name: 'containment-identity'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'id-${resourceToken}'
  }
}

// Each watched subscription: the containment role (ABAC-guarded), the system topic on the
// subscription and, once the code is deployed, the event subscriptions to the functions.
module watch 'app/watch-subscription.bicep' = [for subscriptionId in watchedSubscriptionIds: {
  name: 'containment-watch-${environmentName}-${take(subscriptionId, 8)}'
  scope: subscription(subscriptionId)
  params: {
    environmentName: environmentName
    location: location
    tags: tags
    topicResourceGroupName: subscriptionId == subscription().subscriptionId ? rg.name : 'rg-${environmentName}-events'
    createTopicResourceGroup: subscriptionId != subscription().subscriptionId
    principalId: identity.outputs.principalId
    protectedRoleDefinitionIds: protectedRoles
    functionAppId: app.outputs.functionAppId
    appSubscriptionId: subscription().subscriptionId
    appResourceGroupName: rg.name
    deadLetterStorageAccountName: app.outputs.storageAccountName
    deadLetterContainerName: app.outputs.deadLetterContainerName
    eventSubscriptionsEnabled: eventSubscriptionsEnabled
  }
}]

// Storage logs of the protected accounts, into the workspace egress detection queries.
module storageLogs 'app/storage-logs.bicep' = [for accountId in protectedAccounts: {
  name: 'containment-logs-${uniqueString(accountId)}'
  scope: resourceGroup(split(accountId, '/')[2], split(accountId, '/')[4])
  params: {
    storageAccountName: last(split(accountId, '/'))
    workspaceId: workspaceId
  }
  dependsOn: [monitoring]
}]

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.functionAppName
output AZURE_FUNCTION_APP_URL string = 'https://${app.outputs.functionAppHostName}'
output AZURE_STORAGE_ACCOUNT_NAME string = app.outputs.storageAccountName
output AZURE_LEDGER_TABLE string = containmentLedgerTable
output AZURE_CONTAINMENT_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_LOG_WORKSPACE_CUSTOMER_ID string = logsAccess.outputs.customerId
output NOTIFICATION_TOPIC_ENDPOINT string = app.outputs.notificationTopicEndpoint
