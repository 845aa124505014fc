metadata name = 'Application Insights'
metadata description = 'Workspace-based Application Insights with local (key) authentication off; the app identity gets Monitoring Metrics Publisher on this component to send telemetry with Entra ID.'

@description('Required. Name of the component.')
param name string

@description('Optional. Region.')
param location string = resourceGroup().location

@description('Optional. Tags.')
param tags object = {}

@description('Required. Resource id of the Log Analytics workspace the telemetry is stored in.')
param logAnalyticsWorkspaceResourceId string

@description('Required. Principal (object) id of the Function App identity.')
param principalId string

// Monitoring Metrics Publisher: required to ingest telemetry when local auth is disabled.
var monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb'

resource component 'Microsoft.Insights/components@2020-02-02' = {
  name: name
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalyticsWorkspaceResourceId
    DisableLocalAuth: true
    IngestionMode: 'LogAnalytics'
    publicNetworkAccessForIngestion: 'Enabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(component.id, principalId, monitoringMetricsPublisherRoleId)
  scope: component
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

@description('Name of the component.')
output name string = component.name

@description('Resource id of the component.')
output resourceId string = component.id

@description('Connection string (APPLICATIONINSIGHTS_CONNECTION_STRING); not a secret: local auth is off.')
output connectionString string = component.properties.ConnectionString
