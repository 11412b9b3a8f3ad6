// Resource logs of one protected storage account's blob service (StorageRead, StorageWrite,
// StorageDelete) into the workspace: the StorageBlobLogs table egress detection queries.
// Deployed into the account's own resource group.
param storageAccountName string
param workspaceId string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource blobLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'synthetic-data-containment'
  scope: blobService
  properties: {
    workspaceId: workspaceId
    logs: [for category in ['StorageRead', 'StorageWrite', 'StorageDelete']: {
      category: category
      enabled: true
    }]
  }
}
