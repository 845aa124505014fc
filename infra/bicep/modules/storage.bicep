metadata name = 'Function App storage'
metadata description = 'Storage account for the Functions host and the connector: work and poison queues, checkpoint table, deployment container. Entra ID only (no shared keys); roles for the app identity scoped to this account.'

@description('Required. Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Optional. Region.')
param location string = resourceGroup().location

@description('Optional. Tags.')
param tags object = {}

@description('Optional. Replication. Zone-redundant by default: the queues hold work not yet delivered.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_ZRS'

@description('Required. Queue of S3 object references (WORK_QUEUE).')
param workQueueName string

@description('Required. Table with per-object checkpoints (CHECKPOINT_TABLE).')
param checkpointTableName string

@description('Required. Blob container the Flex Consumption deployment package is uploaded to.')
param deploymentContainerName string

@description('Required. Principal (object) id of the Function App identity.')
param principalId string

@description('Required. Resource id of the Log Analytics workspace the queue, table and blob logs go to.')
param logAnalyticsWorkspaceResourceId string

@description('Optional. Disabled = reachable only through private endpoints (private-network mode).')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

// The Functions host moves a message to "<queue>-poison" after maxDequeueCount attempts; the
// connector dead-letters there too (POISON_QUEUE), so the name is derived, not chosen.
var poisonQueueName = '${workQueueName}-poison'

// Storage Queue Data Contributor: work and poison queues (trigger, poller, replay).
var storageQueueDataContributorRoleId = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
// Storage Table Data Contributor: checkpoint and dedup table.
var storageTableDataContributorRoleId = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
// Storage Blob Data Owner: host leases/keys and the Flex deployment container.
var storageBlobDataOwnerRoleId = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Public by default (the app has no VNet integration then) with shared keys disabled, so every call needs an Entra ID token and a data role; privateNetworking=true in main.bicep sets publicNetworkAccess Disabled and defaultAction Deny behind private endpoints.
  // checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35 (public only without the private-network mode, Entra ID only); anonymous blob access is off (allowBlobPublicAccess false).
  // checkov:skip=CKV_AZURE_206: Zone-redundant by default: the account holds transient work queues and checkpoints of a single-region app, which geo-replication does not make recoverable; storageSkuName accepts GZRS/RAGZRS.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: publicNetworkAccess == 'Disabled' ? 'Deny' : 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storageAccount
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storageAccount
  name: 'default'
}

resource workQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: workQueueName
}

resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: poisonQueueName
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storageAccount
  name: 'default'
}

resource checkpointTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: checkpointTableName
}

// Audit trail: every read, write and delete on the queues (work items, dead letters), the
// checkpoint table and the blobs (host state, deployment package), to the workspace.
resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-workspace'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsWorkspaceResourceId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-workspace'
  scope: queueService
  properties: {
    workspaceId: logAnalyticsWorkspaceResourceId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-workspace'
  scope: tableService
  properties: {
    workspaceId: logAnalyticsWorkspaceResourceId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

resource queueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, principalId, storageQueueDataContributorRoleId)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributorRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, principalId, storageTableDataContributorRoleId)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributorRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource blobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, principalId, storageBlobDataOwnerRoleId)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

@description('Name of the storage account.')
output name string = storageAccount.name

@description('Resource id of the storage account.')
output resourceId string = storageAccount.id

@description('Blob service endpoint (AzureWebJobsStorage__blobServiceUri).')
output blobServiceUri string = storageAccount.properties.primaryEndpoints.blob

@description('Queue service endpoint (AzureWebJobsStorage__queueServiceUri).')
output queueServiceUri string = storageAccount.properties.primaryEndpoints.queue

@description('Table service endpoint (AzureWebJobsStorage__tableServiceUri).')
output tableServiceUri string = storageAccount.properties.primaryEndpoints.table

@description('URL of the deployment container (functionAppConfig.deployment.storage.value).')
output deploymentContainerUrl string = '${storageAccount.properties.primaryEndpoints.blob}${deploymentContainer.name}'

@description('Work queue name.')
output workQueueName string = workQueue.name

@description('Poison queue name.')
output poisonQueueName string = poisonQueue.name

@description('Checkpoint table name.')
output checkpointTableName string = checkpointTable.name
