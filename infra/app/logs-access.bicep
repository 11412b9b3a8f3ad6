// Log Analytics query access for the app, on the workspace that holds the protected
// accounts' StorageBlobLogs and nothing else: a custom role with exactly the three Log
// Analytics actions the egress scan performs (containment/detect/egress_scan.py PERMISSIONS),
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
    description: 'Reads StorageBlobLogs in the workspace for egress detection, and no other table.'
    type: 'CustomRole'
    assignableScopes: [resourceGroup().id]
    permissions: [
      {
        actions: [
          'Microsoft.OperationalInsights/workspaces/read'
          'Microsoft.OperationalInsights/workspaces/query/read'
          'Microsoft.OperationalInsights/workspaces/query/StorageBlobLogs/read'
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
    description: 'Synthetic-data containment: egress detection queries StorageBlobLogs.'
  }
}

output customerId string = workspace.properties.customerId
