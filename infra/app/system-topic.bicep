// The Event Grid system topic for one subscription's ARM events (resource writes,
// deletes, actions through management.azure.com). One per subscription: Azure allows one
// system topic per source.
param name string
param tags object

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: name
  location: 'global'
  tags: tags
  identity: {
    // Used only to dead-letter undeliverable events into the app's storage account.
    type: 'SystemAssigned'
  }
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

output name string = topic.name
output principalId string = topic.identity.principalId
