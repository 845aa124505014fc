metadata name = 'Key Vault'
metadata description = 'Vault for AWS access keys (only for sources that use keys instead of role federation): RBAC, soft delete, purge protection; Key Vault Secrets User for the app identity on this vault only.'

@description('Required. Vault name (3-24 letters, digits and hyphens).')
@minLength(3)
@maxLength(24)
param name string

@description('Optional. Region.')
param location string = resourceGroup().location

@description('Optional. Tags.')
param tags object = {}

@description('Required. Principal (object) id of the Function App identity (reads secrets).')
param principalId string

@description('Optional. Days a deleted vault or secret can be recovered.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

// Key Vault Secrets User: read secret values (the AWS access key id and secret access key).
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: The Flex Consumption app has no VNet integration here, so it reaches the vault over its public endpoint; access is Entra ID RBAC only (Key Vault Secrets User for one identity).
  // checkov:skip=CKV_AZURE_189: Same reason as CKV_AZURE_109: public endpoint needed without VNet integration; RBAC-only, purge-protected vault.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsUserRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

@description('Name of the vault.')
output name string = vault.name

@description('Resource id of the vault.')
output resourceId string = vault.id

@description('Vault URI (KEY_VAULT_URL).')
output uri string = vault.properties.vaultUri
