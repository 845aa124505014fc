metadata name = 'Function App (Flex Consumption)'
metadata description = 'FC1 plan and a Linux Python Function App running as the user-assigned identity; deployment package pulled from a blob container with that identity; app settings passed in whole.'

@description('Required. Name of the Function App (also the default host name prefix).')
param name string

@description('Required. Name of the Flex Consumption plan.')
param planName string

@description('Optional. Region.')
param location string = resourceGroup().location

@description('Optional. Tags.')
param tags object = {}

@description('Required. Resource id of the user-assigned managed identity the app runs as.')
param identityResourceId string

@description('Required. URL of the blob container holding the deployment package.')
param deploymentContainerUrl string

@description('Required. Every app setting, name -> value (the app reads these; see shared/config.py SETTINGS_DOC).')
param appSettings object

@description('Required. Resource id of the Log Analytics workspace the function logs go to.')
param logAnalyticsWorkspaceResourceId string

@description('Optional. Subnet for VNet integration (private-network mode); empty = none.')
param virtualNetworkSubnetResourceId string = ''

@description('Optional. Python version of the Functions runtime.')
@allowed([
  '3.10'
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

@description('Optional. Scale-out and instance size of the Flex Consumption app.')
param scale scaleType = {
  maximumInstanceCount: 40
  instanceMemoryMB: 2048
}

// (Member decorators are left out: the offline parser, pycep, rejects them.)
@description('Scale settings of a Flex Consumption app: maximumInstanceCount (40-1000) and instanceMemoryMB (512, 2048 or 4096).')
type scaleType = {
  maximumInstanceCount: int
  instanceMemoryMB: int
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy is region-dependent and not enabled by default; the connector is at-least-once and resumes from checkpoints after a zone outage.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Public inbound access serves only the function-key protected /api/health endpoint and code deployment; the timer and queue triggers need no inbound traffic.
  // checkov:skip=CKV_AZURE_17: Callers of /api/health authenticate with a function key; requiring client certificates would break that and the deployment tooling.
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero per trigger; queue work survives instance loss (visibility timeout + checkpoints), so no always-ready instances are paid for.
  // checkov:skip=CKV_AZURE_213: The App Service health-check feature is not used on Flex Consumption; /api/health (function key) is the check, see infra/README.md.
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityResourceId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    virtualNetworkSubnetId: empty(virtualNetworkSubnetResourceId) ? null : virtualNetworkSubnetResourceId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityResourceId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: scale.maximumInstanceCount
        instanceMemoryMB: scale.instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

resource appSettingsConfig 'Microsoft.Web/sites/config@2024-04-01' = {
  // This is the appsettings config (name/value pairs), not the web config; checkov reads every
  // Microsoft.Web/sites/config as web config, so its web-config checks do not apply here:
  // checkov:skip=CKV_AZURE_13: Not web config (appsettings). Authentication is function keys on /api/health; triggers are not HTTP.
  // checkov:skip=CKV_AZURE_63: Not web config (appsettings). Logs go to Application Insights.
  // checkov:skip=CKV_AZURE_65: Not web config (appsettings). Errors go to Application Insights.
  // checkov:skip=CKV_AZURE_66: Not web config (appsettings). Requests are traced in Application Insights.
  // checkov:skip=CKV_AZURE_80: Not web config (appsettings); a Python app has no .NET Framework version.
  // checkov:skip=CKV_AZURE_88: Not web config (appsettings); Flex Consumption has no Azure Files content share.
  // checkov:skip=CKV_AZURE_222: Not web config (appsettings); public access is set on the site, see its skip reason.
  parent: functionApp
  name: 'appsettings'
  properties: appSettings
}

// Publishing only with Entra ID (az / func with a token): no FTP or SCM username/password.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'logs-to-workspace'
  scope: functionApp
  properties: {
    workspaceId: logAnalyticsWorkspaceResourceId
    logs: [
      {
        category: 'FunctionAppLogs'
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

@description('Name of the Function App.')
output name string = functionApp.name

@description('Resource id of the Function App.')
output resourceId string = functionApp.id

@description('Default host name (https://<host>/api/health).')
output defaultHostName string = functionApp.properties.defaultHostName
