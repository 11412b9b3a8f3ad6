// Application Insights on a Log Analytics workspace: a new workspace here, or an existing
// one (by resource ID, possibly in another resource group or subscription).
param location string
param tags object
param createWorkspace bool
param workspaceName string
@description('Resource ID of the workspace (the new one\'s, or the existing one\'s).')
param workspaceId string
param applicationInsightsName string

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = if (createWorkspace) {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 90
    features: {
      // Queries need Azure RBAC on the workspace (or the resource); no workspace keys.
      disableLocalAuth: true
      enableLogAccessUsingOnlyResourcePermissions: true
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspaceId
    // Telemetry only with Entra ID (the app sends APPLICATIONINSIGHTS_AUTHENTICATION_STRING).
    DisableLocalAuth: true
  }
  dependsOn: [workspace]
}

output applicationInsightsName string = applicationInsights.name
