metadata name = 'Pipeline health workbook'
metadata description = 'Shared workbook (Microsoft Sentinel category) over AWSS3ConnectorHealth_CL: throughput per table, latency, outcomes, dead letters, SQS backlog, poison depth, circuit breaker, last heartbeat.'

@description('Required. Display name shown in Workbooks / Microsoft Sentinel.')
param displayName string

@description('Required. Resource id of the Log Analytics workspace (Microsoft Sentinel) the queries run against.')
param logAnalyticsWorkspaceResourceId string

@description('Optional. Region.')
param location string = resourceGroup().location

@description('Optional. Tags.')
param tags object = {}

// Exported-from-the-portal JSON; its KQL is checked offline by tools/validate_infra.py.
var workbookContent = loadJsonContent('../workbooks/pipeline-health.workbook.json')

resource workbook 'Microsoft.Insights/workbooks@2022-04-01' = {
  // A workbook's name must be a GUID; stable per resource group and workspace.
  name: guid(resourceGroup().id, logAnalyticsWorkspaceResourceId, 'aws-s3-pipeline-health')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'sentinel'
    sourceId: logAnalyticsWorkspaceResourceId
    version: 'Notebook/1.0'
    serializedData: string(union(workbookContent, {
      fallbackResourceIds: [
        logAnalyticsWorkspaceResourceId
      ]
    }))
  }
}

@description('Resource id of the workbook.')
output resourceId string = workbook.id
