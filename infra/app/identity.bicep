// The app's user-assigned managed identity: every ARM, Log Analytics, Storage and Event
// Grid call the app makes is made as this identity, and only this identity is granted.
param location string
param tags object
param name string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output name string = identity.name
output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
