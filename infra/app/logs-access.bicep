// Log Analytics query access for the app, on the workspace that holds the protected
// accounts' StorageBlobLogs (and the AZKVAuditLogs of the vaults holding their customer-managed
// keys) and nothing else: a custom role with exactly the Log Analytics actions the egress scan
// performs (containment/detect/egress_scan.py PERMISSIONS),
// assigned at the workspace. Deployed into the workspace's resource group, wherever it is.
param environmentName string
param workspaceName string
param principalId string

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource logReader 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, environmentName, 'containment-log-reader')
  properties: {
    roleName: 'Synthetic-data containment log reader (${environmentName}, ${uniqueString(resourceGroup().id)})'
    description: 'Reads StorageBlobLogs and AZKVAuditLogs in the workspace for egress detection, and no other table.'
    type: 'CustomRole'
    assignableScopes: [resourceGroup().id]
    permissions: [
      {
        actions: [
          'Microsoft.OperationalInsights/workspaces/read'
          'Microsoft.OperationalInsights/workspaces/query/read'
          'Microsoft.OperationalInsights/workspaces/query/StorageBlobLogs/read'
          'Microsoft.OperationalInsights/workspaces/query/AZKVAuditLogs/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

resource logReaderAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, principalId, logReader.id)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', logReader.name)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Synthetic-data containment: egress detection queries StorageBlobLogs and AZKVAuditLogs.'
  }
}

output customerId string = workspace.properties.customerId
