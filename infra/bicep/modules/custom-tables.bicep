metadata name = 'Custom Log Analytics tables'
metadata description = 'One Microsoft.OperationalInsights/workspaces/tables per *_CL schema file, columns taken from the file.'

@description('Required. Name of the existing Log Analytics workspace (this module is deployed to its resource group).')
param workspaceName string

@description('Required. Schema documents of the custom tables ({table, columns: [{name, type}]}).')
param tables array

@description('Optional. Interactive retention, in days.')
@minValue(4)
@maxValue(730)
param retentionInDays int = 90

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource table 'Microsoft.OperationalInsights/workspaces/tables@2022-10-01' = [for schema in tables: {
  parent: workspace
  name: schema.table
  properties: {
    plan: 'Analytics'
    retentionInDays: retentionInDays
    schema: {
      name: schema.table
      columns: schema.columns
    }
  }
}]

@description('Names of the tables.')
output names array = [for (schema, i) in tables: table[i].name]
