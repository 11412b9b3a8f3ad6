// One watched subscription: the app's least-privilege custom role assigned at the
// subscription with an ABAC condition on deletions, the Event Grid system topic on the
// subscription's ARM events, and (once the function code is deployed) the event
// subscriptions that route each function's operations to it.
targetScope = 'subscription'

param environmentName string
param location string
param tags object
@description('Resource group of the system topic: the app\'s own in its subscription, a new one elsewhere.')
param topicResourceGroupName string
param createTopicResourceGroup bool
@description('Object ID of the app\'s managed identity.')
param principalId string
@description('Role definition IDs (GUIDs) the app may never assign or unassign, on top of the privileged ones below.')
param protectedRoleDefinitionIds array
param functionAppId string
param appSubscriptionId string
param appResourceGroupName string
param deadLetterStorageAccountName string
param deadLetterContainerName string
param eventSubscriptionsEnabled bool

// Every ARM operation the app's code performs (containment.deployment.required_permissions(),
// less the Log Analytics reads, which logs-access.bicep grants on the workspace alone).
// tests/infra/test_infra.py proves this list and the code agree exactly: nothing missing, nothing
// extra. No wildcards, no listKeys.
var containmentActions = [
  'Microsoft.Authorization/policyAssignments/read'
  'Microsoft.Authorization/policyAssignments/write'
  'Microsoft.Authorization/policyExemptions/read'
  'Microsoft.Authorization/roleAssignments/delete'
  'Microsoft.Authorization/roleAssignments/read'
  'Microsoft.Authorization/roleDefinitions/read'
  'Microsoft.Insights/diagnosticSettings/read'
  'Microsoft.Insights/diagnosticSettings/write'
  'Microsoft.KeyVault/vaults/accessPolicies/write'
  'Microsoft.KeyVault/vaults/keys/read'
  'Microsoft.KeyVault/vaults/read'
  'Microsoft.KeyVault/vaults/write'
  'Microsoft.Network/networkSecurityGroups/read'
  'Microsoft.Network/networkSecurityGroups/securityRules/delete'
  'Microsoft.Network/networkSecurityGroups/securityRules/read'
  'Microsoft.Network/networkSecurityGroups/securityRules/write'
  'Microsoft.Storage/storageAccounts/blobServices/containers/read'
  'Microsoft.Storage/storageAccounts/blobServices/containers/write'
  'Microsoft.Storage/storageAccounts/objectReplicationPolicies/delete'
  'Microsoft.Storage/storageAccounts/objectReplicationPolicies/read'
  'Microsoft.Storage/storageAccounts/read'
  'Microsoft.Storage/storageAccounts/regeneratekey/action'
  'Microsoft.Storage/storageAccounts/revokeUserDelegationKeys/action'
  'Microsoft.Storage/storageAccounts/write'
]

// The roles that administer access: Owner, User Access Administrator, Role Based Access
// Control Administrator (the same IDs in every tenant). The role has no
// roleAssignments/write: the app's identity only ever takes access away (a released role
// deletion is a restore plan a person applies). An ABAC condition on the assignment
// (enforced by Azure, whatever the app's code decides): the app may delete only
// assignments of other roles (the data-access grants it contains), and never an assignment
// of its own identity. A deletion outside that is refused with 403 and recorded as failed.
var privilegedRoleDefinitionIds = [
  '8e3af657-a8ff-443c-a75c-2fe8c4bcb635'
  '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9'
  'f58310d9-a9f6-439a-9e8d-f62e7b41a168'
]
var protectedRoles = join(union(privilegedRoleDefinitionIds, protectedRoleDefinitionIds), ', ')
var deleteCondition = '(!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAllValues:GuidNotEquals {${protectedRoles}} AND @Resource[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAllValues:GuidNotEquals {${principalId}})'

resource containmentRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'synthetic-data-containment')
  properties: {
    roleName: 'Synthetic-data containment (${environmentName}, ${subscription().subscriptionId})'
    description: 'Exactly the ARM operations the synthetic-data containment app performs: read, contain and release storage accounts, containers, NSG rules and key vaults; remove vault access policies; read and delete role assignments (never create); put back blob diagnostic settings and approved policy assignments. No listKeys, no wildcards.'
    type: 'CustomRole'
    assignableScopes: [subscription().id]
    permissions: [
      {
        actions: containmentActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

resource containmentAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, containmentRole.id)
  properties: {
    roleDefinitionId: containmentRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Synthetic-data containment: assigns nothing; never unassigns Owner, User Access Administrator, RBAC Administrator, nor anything of its own.'
    conditionVersion: '2.0'
    condition: deleteCondition
  }
}

resource topicResourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = if (createTopicResourceGroup) {
  name: topicResourceGroupName
  location: location
  tags: tags
}

module topic 'system-topic.bicep' = {
  name: 'containment-system-topic-${environmentName}'
  scope: resourceGroup(topicResourceGroupName)
  params: {
    name: 'evgst-${environmentName}-${take(uniqueString(subscription().id), 6)}'
    tags: tags
  }
  dependsOn: [topicResourceGroup]
}

// The topic's identity may write dead-lettered events to the app's dead-letter container
// (and nowhere else).
module deadLetterAccess 'deadletter-access.bicep' = {
  name: 'containment-deadletter-${take(uniqueString(subscription().id), 8)}'
  scope: resourceGroup(appSubscriptionId, appResourceGroupName)
  params: {
    storageAccountName: deadLetterStorageAccountName
    containerName: deadLetterContainerName
    principalId: topic.outputs.principalId
  }
}

module subscriptions 'event-subscriptions.bicep' = if (eventSubscriptionsEnabled) {
  name: 'containment-event-subscriptions-${environmentName}'
  scope: resourceGroup(topicResourceGroupName)
  params: {
    systemTopicName: topic.outputs.name
    functionAppId: functionAppId
    deadLetterStorageAccountId: deadLetterAccess.outputs.storageAccountId
    deadLetterContainerName: deadLetterContainerName
  }
}

output roleDefinitionId string = containmentRole.id
