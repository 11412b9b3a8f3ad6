// The Function App and what only it uses: its storage account (decision ledger table, its
// evidence container, its chain table and immutable digest container, containment queue and
// its poison queue, the Flex deployment container, the Event Grid dead-letter container), the Flex Consumption plan, the site with every app setting, and
// the Event Grid custom topic the app publishes notifications to. The identity's data roles
// are scoped to this storage account and this topic, nothing wider.
param location string
param tags object
param resourceToken string
param identityName string
param applicationInsightsName string
@description('Workspace ID (GUID) of the workspace that holds the protected accounts\' StorageBlobLogs.')
param logWorkspaceCustomerId string
@description('Resource ID of that same workspace: where a protected account\'s blob diagnostic setting must send StorageRead.')
param logWorkspaceResourceId string
param storageSkuName string
@description('Object IDs that may read the decision ledger (Storage Table Data Reader on this account, Storage Blob Data Reader on its evidence and digest containers).')
param ledgerReaderPrincipalIds array
@description('Days each ledger digest stays immutable (the digest container\'s time-based retention policy).')
param ledgerDigestRetentionDays int
param maximumInstanceCount int
param instanceMemoryMB int
@description('Instances kept running for each function on the containment path (main.bicep alwaysReadyInstances).')
param alwaysReadyInstances int
@description('Every CONTAINMENT_* app setting, by name (see main.bicep).')
param containmentSettings object
@description('Application (client) ID of the Entra app registration that App Service Authentication accepts tokens for (main.bicep entraClientId).')
param entraClientId string

var deploymentContainerName = 'app-package'

// The functions on the containment path (containment/deployment.py CONTAINMENT_PATH; the infra
// tests keep the two lists equal). An Event Grid or queue trigger is in none of Flex
// Consumption's scale groups (http, blob, durable): each such function scales on its own
// instances, named `function:<name>` in alwaysReady.
// https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#per-function-scaling
// https://learn.microsoft.com/azure/azure-functions/flex-consumption-how-to#set-always-ready-instance-counts
var containmentPath = [
  'storage_exposure'
  'role_assignment_grant'
  'nsg_exposure'
  'storage_key_access'
  'guardrail_change'
  'key_vault_write'
  'contain'
]
var alwaysReady = [for name in containmentPath: {
  name: 'function:${name}'
  instanceCount: alwaysReadyInstances
}]
var deadLetterContainerName = 'eventgrid-deadletter'

// Built-in roles (IDs are the same in every tenant).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var storageTableDataReader = '76199698-9eea-4c19-bc75-cec21354c6b6'
var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
var eventGridDataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: the app has no virtual network (Flex Consumption without VNet integration), so its instances reach this account over the public endpoint; every request needs Entra ID (shared key off, CKV_SDC_2)
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: disabling public network access would cut the app off from its own ledger and queue
  // checkov:skip=CKV_AZURE_206: zone-redundant by default (storageSkuName, Standard_ZRS; GZRS allowed); checkov accepts only geo-replicated SKUs and cannot read a parameter
  // checkov:skip=CKV_AZURE_43: false positive: the name is 'st' + uniqueString() (15 lower-case letters and digits), which checkov cannot evaluate
  name: 'st${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: storageSkuName }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // The app has no virtual network (Flex Consumption without VNet integration): its
      // instances reach this account over the public endpoint, Entra ID only.
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: { enabled: true, keyType: 'Account' }
        file: { enabled: true, keyType: 'Account' }
        queue: { enabled: true, keyType: 'Account' }
        table: { enabled: true, keyType: 'Account' }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: 7 }
    containerDeleteRetentionPolicy: { enabled: true, days: 7 }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: { publicAccess: 'None' }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: { publicAccess: 'None' }
}

// What a ledger entity cannot hold (containment/adapters/ledger.py): blobs named by decision and SHA-256.
resource evidenceContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: containmentSettings.CONTAINMENT_EVIDENCE_CONTAINER
  properties: { publicAccess: 'None' }
}

// The chains' heads, written by the drift sweep (containment/adapters/ledger.py), create-only.
resource digestContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: containmentSettings.CONTAINMENT_LEDGER_DIGEST_CONTAINER
  properties: { publicAccess: 'None' }
}

// Write once, read many: a digest can be created and read, never changed or deleted, for
// ledgerDigestRetentionDays after it was written, by anyone (the app's Blob Data Owner
// included). Deployed unlocked: while unlocked, whoever may delete the policy
// (immutabilityPolicies/delete: Owner, Contributor; not the app) can remove it; locking it
// (a person's one-way step, README) makes it binding on them too.
// https://learn.microsoft.com/en-us/azure/storage/blobs/immutable-time-based-retention-policy-overview
// https://learn.microsoft.com/en-us/azure/templates/microsoft.storage/storageaccounts/blobservices/containers/immutabilitypolicies
resource digestRetention 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = {
  parent: digestContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: ledgerDigestRetentionDays
    allowProtectedAppendWrites: false
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource containmentQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: containmentSettings.CONTAINMENT_QUEUE
}

// Where the Functions host moves a request after maxDequeueCount failed attempts.
resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${containmentSettings.CONTAINMENT_QUEUE}-poison'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource ledgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: containmentSettings.CONTAINMENT_LEDGER_TABLE
}

// The ledger's evidence chains: each decision's place, its SHA-256 and its predecessor's.
resource chainTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: containmentSettings.CONTAINMENT_LEDGER_CHAIN_TABLE
}

// Data roles on this account only: blobs (host leases, timer state, deployment package),
// the queue, the ledger table.
resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [storageBlobDataOwner, storageQueueDataContributor, storageTableDataContributor]: {
  name: guid(storage.id, identity.id, role)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}]

// People who read the ledger (the audit evidence): read-only, this account only.
resource ledgerReaders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in ledgerReaderPrincipalIds: {
  name: guid(storage.id, principalId, storageTableDataReader)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataReader)
    principalId: principalId
  }
}]

// ... and the evidence the ledger's records refer to: read-only, that container only.
resource evidenceReaders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in ledgerReaderPrincipalIds: {
  name: guid(evidenceContainer.id, principalId, storageBlobDataReader)
  scope: evidenceContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
    principalId: principalId
  }
}]

// ... and the digests that bound them, to verify the ledger (python -m containment verify).
resource digestReaders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in ledgerReaderPrincipalIds: {
  name: guid(digestContainer.id, principalId, storageBlobDataReader)
  scope: digestContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
    principalId: principalId
  }
}]

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, identity.id, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Notifications the app publishes (CloudEvents, CONTAINMENT_NOTIFY_TOPIC_ENDPOINT; Entra ID only:
// no access keys).
resource notificationTopic 'Microsoft.EventGrid/topics@2025-02-15' = {
  // checkov:skip=CKV_AZURE_193: the app publishes from Flex Consumption without a virtual network, over the public endpoint; publishing needs Entra ID (local auth disabled, CKV_AZURE_192)
  // checkov:skip=CKV_AZURE_191: a topic identity only serves identity-based delivery to subscribers; the topic has none, and an unused identity is a principal for nothing
  name: 'evgt-${resourceToken}'
  location: location
  tags: tags
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    minimumTlsVersionAllowed: '1.2'
  }
}

resource notificationSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(notificationTopic.id, identity.id, eventGridDataSender)
  scope: notificationTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSender)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption exists in some regions only; Event Grid retries (24 h) and the queue carry work across an instance or zone loss
  name: 'plan-${resourceToken}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

// Host and identity settings. Flex Consumption sets the worker runtime from
// functionAppConfig.runtime (FUNCTIONS_WORKER_RUNTIME is not allowed here).
var hostSettings = {
  AzureWebJobsStorage__accountName: storage.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.properties.clientId
  AZURE_CLIENT_ID: identity.properties.clientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
  CONTAINMENT_SELF_PRINCIPAL_ID: identity.properties.principalId
  CONTAINMENT_LOG_WORKSPACE_ID: logWorkspaceCustomerId
  CONTAINMENT_LOG_WORKSPACE_RESOURCE_ID: logWorkspaceResourceId
  CONTAINMENT_NOTIFY_TOPIC_ENDPOINT: notificationTopic.properties.endpoint
  // The app's own deployment (its storage, its topic, ...) is never acted on: findings there are reported.
  CONTAINMENT_OWN_SCOPES: resourceGroup().id
}
var appSettings = union(containmentSettings, hostSettings)

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Event Grid delivers to the functions over the app's public endpoint (AzureFunction destination, authenticated by the host's Event Grid system key); operators call the HTTP endpoints with an Entra token (authSettings) and a function key
  // checkov:skip=CKV_AZURE_17: Event Grid does not present a client certificate, so requiring one would stop event delivery; operators authenticate with an Entra token (authSettings) and a function key
  // checkov:skip=CKV_AZURE_212: Flex Consumption has no site worker count (siteConfig.numberOfWorkers): it scales per function, from zero or from its always-ready instances (alwaysReadyInstances); failover is Event Grid's retries and the queue's redelivery
  // checkov:skip=CKV_AZURE_213: Flex Consumption scales instances per function; there is no site-wide instance pool behind a load balancer for a health check to evict from
  name: 'func-${resourceToken}'
  location: location
  tags: union(tags, { 'azd-service-name': 'containment' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        // 0: no entries at all, Flex Consumption's default (scale from zero).
        alwaysReady: (alwaysReadyInstances > 0) ? alwaysReady : []
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
  dependsOn: [storageRoles, metricsPublisher, deploymentContainer, containmentQueue, poisonQueue, ledgerTable,
    evidenceContainer, chainTable, digestRetention]
}

// The paths Easy Auth lets through without a token because they must stay key-authenticated,
// and nothing else. Event Grid delivers to an Event Grid trigger at
// /runtime/webhooks/eventgrid?functionName=<function>&code=<system key>
// (https://learn.microsoft.com/azure/azure-functions/event-grid-how-tos) and presents no Entra
// token there, only the Event Grid extension's system key, which it reads with its own service
// principal (https://learn.microsoft.com/azure/event-grid/security-authentication); the
// Functions host checks that key. Queue and timer triggers make no HTTP request. The host's
// admin API (/admin/...) and every operator route (/api/...) stay behind Entra.
var keyAuthenticatedPaths = [
  '/runtime/webhooks/eventgrid'
]

// App Service Authentication ("Easy Auth") in front of the app, with Microsoft Entra ID:
// every request needs a bearer token for the app registration `entraClientId` from this
// tenant, or gets 401 (an API: no redirect to a sign-in page). The function keys
// (http_auth_level FUNCTION in function_app.py) still apply behind it, so an operator
// request needs both: a token (who) and a function key (a second factor). Easy Auth
// authenticates and passes the caller's claims (roles included) to the app in
// X-MS-CLIENT-PRINCIPAL; it does not check app roles, the app must.
// Properties: https://learn.microsoft.com/azure/templates/microsoft.web/sites/config-authsettingsv2
// Entra provider, issuer and audience: https://learn.microsoft.com/azure/app-service/configure-authentication-provider-aad
// Behaviour (requireAuthentication, Return401, excludedPaths): https://learn.microsoft.com/azure/app-service/overview-authentication-authorization
// and https://learn.microsoft.com/azure/app-service/configure-authentication-file-based
// The issuer is this cloud's sign-in endpoint and this tenant, v2.0
// (https://learn.microsoft.com/azure/azure-resource-manager/bicep/bicep-functions-deployment#environment).
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov reads every Microsoft.Web/sites/config as the site's `web` config; these look for properties authsettingsV2 does not have:
  // checkov:skip=CKV_AZURE_13: reads the retired v1 `authsettings` shape (properties.enabled); this is authsettingsV2, on with platform.enabled and requireAuthentication, which CKV_AZURE_56 and CKV_SDC_5 check
  // checkov:skip=CKV_AZURE_63: httpLoggingEnabled is a property of the site's `web` config, not of authsettingsV2 (the site declares its settings in siteConfig)
  // checkov:skip=CKV_AZURE_65: detailedErrorLoggingEnabled is a property of the site's `web` config, not of authsettingsV2 (the site declares its settings in siteConfig)
  // checkov:skip=CKV_AZURE_66: requestTracingEnabled is a property of the site's `web` config, not of authsettingsV2 (the site declares its settings in siteConfig)
  // checkov:skip=CKV_AZURE_80: netFrameworkVersion is a property of the site's `web` config, not of authsettingsV2; the app is Python 3.11 on Linux
  // checkov:skip=CKV_AZURE_88: azureStorageAccounts (Azure Files mounts) is a property of the site's config, not of authsettingsV2; the app mounts no file share
  // checkov:skip=CKV_AZURE_222: publicNetworkAccess is a property of the site, not of authsettingsV2; the site's own skip says why it stays public
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
      runtimeVersion: '~1'
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: keyAuthenticatedPaths
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          // This tenant, v2.0 tokens (audience: the client ID). No client secret: the app
          // signs no one in, it only validates bearer tokens.
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
          clientId: entraClientId
        }
        validation: {
          allowedAudiences: [
            entraClientId
          ]
        }
      }
    }
    login: {
      // Bearer tokens only: no sign-in session, so nothing for a token store to keep (it would
      // hold callers' tokens at rest).
      tokenStore: {
        enabled: false
      }
    }
  }
}

// No FTP or basic-auth SCM publishing: deployments use Entra ID (azd, func, az).
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: { allow: false }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: { allow: false }
}

output functionAppId string = site.id
output functionAppName string = site.name
output functionAppHostName string = site.properties.defaultHostName
output storageAccountName string = storage.name
output deadLetterContainerName string = deadLetterContainer.name
output notificationTopicEndpoint string = notificationTopic.properties.endpoint
