metadata name = 'User-assigned managed identity'
metadata description = 'The identity the Function App runs as: storage, Key Vault, Logs Ingestion, App Insights, and the token AWS STS trusts.'

@description('Required. Name of the identity.')
param name string

@description('Optional. Region.')
param location string = resourceGroup().location

@description('Optional. Tags.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

@description('Resource id of the identity.')
output resourceId string = identity.id

@description('Client (application) id: AZURE_CLIENT_ID and AzureWebJobsStorage__clientId.')
output clientId string = identity.properties.clientId

@description('Principal (object) id: role assignments, and the subject (sub) the AWS role trust policy pins.')
output principalId string = identity.properties.principalId

@description('Name of the identity.')
output name string = identity.name
