metadata name = 'Private endpoint'
metadata description = 'One private endpoint for one sub-resource (blob, queue, table, vault) of a storage account or Key Vault, registered in its private DNS zone.'

@description('Required. Name of the private endpoint.')
param name string

@description('Optional. Region.')
param location string = resourceGroup().location

@description('Optional. Tags.')
param tags object = {}

@description('Required. Resource id of the subnet the endpoint gets its address from.')
param subnetResourceId string

@description('Required. Resource id of the storage account or Key Vault.')
param targetResourceId string

@description('Required. Sub-resource (group id): blob, queue, table or vault.')
@allowed([
  'blob'
  'queue'
  'table'
  'vault'
])
param groupId string

@description('Required. Resource id of the private DNS zone for this sub-resource.')
param privateDnsZoneResourceId string

resource endpoint 'Microsoft.Network/privateEndpoints@2023-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetResourceId
    }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: targetResourceId
          groupIds: [
            groupId
          ]
        }
      }
    ]
  }
}

resource zoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: groupId
        properties: {
          privateDnsZoneId: privateDnsZoneResourceId
        }
      }
    ]
  }
}

@description('Resource id of the private endpoint.')
output resourceId string = endpoint.id
