metadata name = 'Private network (optional)'
metadata description = 'Virtual network for the private-network mode: a subnet delegated to the Flex Consumption app (VNet integration, outbound through a NAT gateway with one static public IP), a subnet for the private endpoints of storage and Key Vault, and the private DNS zones that resolve them inside the network.'

@description('Required. Name prefix of the network resources.')
param name string

@description('Optional. Region.')
param location string = resourceGroup().location

@description('Optional. Tags.')
param tags object = {}

@description('Optional. Address space of the virtual network.')
param addressPrefix string = '10.40.0.0/24'

@description('Optional. Subnet of the Function App (VNet integration, delegated to Microsoft.App/environments).')
param appSubnetPrefix string = '10.40.0.0/26'

@description('Optional. Subnet of the private endpoints.')
param endpointSubnetPrefix string = '10.40.0.64/27'

// Storage (blob, queue, table) and Key Vault, as the public cloud names them.
var zoneNames = [
  'privatelink.blob.${environment().suffixes.storage}'
  'privatelink.queue.${environment().suffixes.storage}'
  'privatelink.table.${environment().suffixes.storage}'
  'privatelink.vaultcore.azure.net'
]

// The subnets admit nothing from outside the network; the app makes outbound calls only
// (AWS, Logs Ingestion, Entra ID) through the NAT gateway.
resource nsg 'Microsoft.Network/networkSecurityGroups@2023-11-01' = {
  name: '${name}-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: [
      {
        name: 'deny-internet-inbound'
        properties: {
          priority: 4000
          direction: 'Inbound'
          access: 'Deny'
          protocol: '*'
          sourceAddressPrefix: 'Internet'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '*'
        }
      }
    ]
  }
}

// A static egress address: the AWS side can pin it (aws:SourceIp) if it wants to.
resource egressIp 'Microsoft.Network/publicIPAddresses@2023-11-01' = {
  name: '${name}-egress-ip'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    publicIPAllocationMethod: 'Static'
    publicIPAddressVersion: 'IPv4'
  }
}

resource natGateway 'Microsoft.Network/natGateways@2023-11-01' = {
  name: '${name}-nat'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    publicIpAddresses: [
      {
        id: egressIp.id
      }
    ]
    idleTimeoutInMinutes: 4
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2023-11-01' = {
  name: '${name}-vnet'
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: appSubnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          natGateway: {
            id: natGateway.id
          }
          defaultOutboundAccess: false
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: endpointSubnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          defaultOutboundAccess: false
          privateEndpointNetworkPolicies: 'Enabled'
        }
      }
    ]
  }
}

resource zones 'Microsoft.Network/privateDnsZones@2020-06-01' = [for zone in zoneNames: {
  name: zone
  location: 'global'
  tags: tags
}]

resource links 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = [for (zone, i) in zoneNames: {
  parent: zones[i]
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}]

@description('Resource id of the subnet the Function App integrates with.')
output appSubnetResourceId string = '${vnet.id}/subnets/app'

@description('Resource id of the subnet of the private endpoints.')
output endpointSubnetResourceId string = '${vnet.id}/subnets/private-endpoints'

@description('Private DNS zone resource ids by service: blob, queue, table, vault.')
output dnsZoneIds object = {
  blob: zones[0].id
  queue: zones[1].id
  table: zones[2].id
  vault: zones[3].id
}

@description('The static public IP address the app calls AWS from.')
output egressIpAddress string = egressIp.properties.ipAddress
