// The event subscriptions that route ARM writes and actions to the app's Event Grid
// functions: each function gets the event types (ResourceWriteSuccess, or for listKeys and
// the SAS listings ResourceActionSuccess) and exactly the operations it handles (advanced
// filter on data.operationName), as containment/deployment.py declares and
// tests/infra/test_infra.py checks. Deployed only once the function code exists: Event Grid
// validates an AzureFunction destination when the subscription is created.
param systemTopicName string
param functionAppId string
param deadLetterStorageAccountId string
param deadLetterContainerName string

// function -> event types and data.operationName values (containment/deployment.py).
var routes = [
  {
    function: 'storage_exposure'
    eventTypes: ['Microsoft.Resources.ResourceWriteSuccess']
    operations: [
      'Microsoft.Storage/storageAccounts/write'
      'Microsoft.Storage/storageAccounts/blobServices/containers/write'
      'Microsoft.Storage/storageAccounts/objectReplicationPolicies/write'
    ]
  }
  {
    function: 'role_assignment_grant'
    eventTypes: ['Microsoft.Resources.ResourceWriteSuccess']
    operations: [
      'Microsoft.Authorization/roleAssignments/write'
    ]
  }
  {
    function: 'nsg_exposure'
    eventTypes: ['Microsoft.Resources.ResourceWriteSuccess']
    operations: [
      'Microsoft.Network/networkSecurityGroups/write'
      'Microsoft.Network/networkSecurityGroups/securityRules/write'
    ]
  }
  {
    function: 'storage_key_access'
    eventTypes: ['Microsoft.Resources.ResourceActionSuccess']
    operations: [
      'Microsoft.Storage/storageAccounts/listKeys/action'
      'Microsoft.Storage/storageAccounts/ListAccountSas/action'
      'Microsoft.Storage/storageAccounts/ListServiceSas/action'
    ]
  }
  {
    function: 'key_vault_write'
    eventTypes: ['Microsoft.Resources.ResourceWriteSuccess']
    operations: [
      'Microsoft.KeyVault/vaults/write'
      'Microsoft.KeyVault/vaults/accessPolicies/write'
      'Microsoft.KeyVault/vaults/privateEndpointConnections/write'
    ]
  }
]

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

resource subscriptions 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = [for route in routes: {
  parent: topic
  name: replace(route.function, '_', '-')
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${route.function}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: route.eventTypes
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.operationName'
          values: route.operations
        }
      ]
    }
    // Event Grid's own limits (30 attempts, 24 hours): a contained exposure is worth
    // every retry; the handlers are idempotent.
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}]
