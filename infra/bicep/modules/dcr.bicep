metadata name = 'Logs Ingestion data collection rule'
metadata description = 'One DCR of kind Direct: declared input streams, each sent unchanged (transformKql source) to its table, and Monitoring Metrics Publisher for the uploading identity on this DCR only.'

@description('Required. Name of the data collection rule.')
param name string

@description('Required. Region; must be the region of the Log Analytics workspace.')
param location string

@description('Required. Resource id of the destination Log Analytics workspace.')
param logAnalyticsWorkspaceResourceId string

@description('Required. streamDeclarations object: { "Custom-<X>": { columns: [...] } } (at most 10 streams).')
param streamDeclarations object

@description('Required. The schema documents of these streams ({table, stream, outputStream, columns}); one dataFlow each.')
param schemas array

@description('Required. Principal (object) id of the identity that uploads through this DCR.')
param principalId string

@description('Optional. Tags.')
param tags object = {}

// Monitoring Metrics Publisher: lets a principal send data to the DCR's Logs Ingestion endpoint.
var monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb'
var destinationName = 'workspace'

resource dataCollectionRule 'Microsoft.Insights/dataCollectionRules@2023-03-11' = {
  name: name
  location: location
  tags: tags
  kind: 'Direct'
  properties: {
    description: 'AWS S3 logs sent by the connector Function App through the Logs Ingestion API.'
    streamDeclarations: streamDeclarations
    destinations: {
      logAnalytics: [
        {
          name: destinationName
          workspaceResourceId: logAnalyticsWorkspaceResourceId
        }
      ]
    }
    dataFlows: [for schema in schemas: {
      streams: [
        schema.stream
      ]
      destinations: [
        destinationName
      ]
      transformKql: 'source'
      outputStream: schema.outputStream
    }]
  }
}

// Rows the service refuses or a transformation drops (DCRLogErrors) land in the workspace.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'errors-to-workspace'
  scope: dataCollectionRule
  properties: {
    workspaceId: logAnalyticsWorkspaceResourceId
    logs: [
      {
        category: 'LogErrors'
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

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataCollectionRule.id, principalId, monitoringMetricsPublisherRoleId)
  scope: dataCollectionRule
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

@description('Name of the DCR.')
output name string = dataCollectionRule.name

@description('Resource id of the DCR.')
output resourceId string = dataCollectionRule.id

@description('Immutable id (dcr-...) used in the Logs Ingestion URL.')
output immutableId string = dataCollectionRule.properties.immutableId

@description('Logs Ingestion endpoint of this DCR (kind Direct).')
output logsIngestionEndpoint string = dataCollectionRule.properties.endpoints.logsIngestion

@description('Tables this DCR writes to.')
output tables array = [for schema in schemas: schema.table]
