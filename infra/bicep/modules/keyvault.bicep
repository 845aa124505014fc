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

@description('Required. Resource id of the Log Analytics workspace the audit log (AuditEvent) goes to.')
param logAnalyticsWorkspaceResourceId string

@description('Optional. Disabled = reachable only through a private endpoint (private-network mode).')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@description('Optional. Days a deleted vault or secret can be recovered.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

// Key Vault Secrets User: read secret values (the AWS access key id and secret access key).
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: Public by default (the app has no VNet integration then) with Entra ID RBAC only (Key Vault Secrets User for one identity); privateNetworking=true in main.bicep sets publicNetworkAccess Disabled and defaultAction Deny behind a private endpoint.
  // checkov:skip=CKV_AZURE_189: Same reason as CKV_AZURE_109: public only without the private-network mode; RBAC-only, purge-protected vault.
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
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: publicNetworkAccess == 'Disabled' ? 'Deny' : 'Allow'
    }
  }
}

// Audit trail: every secret read (AuditEvent) to the workspace, next to the connector's rows.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-workspace'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceResourceId
    logs: [
      {
        category: 'AuditEvent'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
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
