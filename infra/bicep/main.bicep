metadata name = 'AWS S3 to Microsoft Sentinel connector'
metadata description = 'Function App (Flex Consumption, Python) that pulls S3 notifications from SQS and sends the log records to Microsoft Sentinel tables through the Logs Ingestion API, with its identity, storage, Key Vault, App Insights, DCRs, custom tables, workbook and alert rules.'

targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------
@description('Required. Short environment name (e.g. prod); part of every resource name.')
@minLength(1)
@maxLength(16)
param environmentName string

@description('Optional. Region of the app resources. The DCRs always go to the workspace region.')
param location string = resourceGroup().location

@description('Optional. Tags applied to every resource.')
param tags object = {}

@description('Required. Resource id of the existing Log Analytics workspace with Microsoft Sentinel enabled.')
param logAnalyticsWorkspaceResourceId string

@description('Required. AWS_SOURCES: list of sources, each {name, queueUrl, region, roleArn} for role federation or {name, queueUrl, region, accessKeyIdSecret, secretAccessKeySecret} (Key Vault secret names) for access keys, with the required allow-list buckets ({bucket: [prefixes ending in /]}, [\'\'] = the whole bucket), optional formatRules ([{pattern, format}]) and rawPrefixes (key prefixes whose unrecognised objects go to AWSS3Raw_CL; default none). No secret values here.')
param awsSources array

@description('Optional. AWS_WEB_IDENTITY_AUDIENCE: App ID URI of the Entra app registration trusted by the AWS IAM OIDC provider (e.g. api://<app-id>). Required when a source has roleArn.')
param awsWebIdentityAudience string = ''

@description('Optional. WORK_QUEUE: Storage queue of S3 object references; the poison queue is <name>-poison.')
@minLength(3)
@maxLength(56)
param workQueueName string = 's3-objects'

@description('Optional. CHECKPOINT_TABLE: Storage table with per-object progress and dedup state.')
@minLength(3)
@maxLength(63)
param checkpointTableName string = 's3objectcheckpoints'

@description('Optional. POLL_SCHEDULE: 6-field NCRONTAB schedule (UTC) of the SQS poller.')
param pollSchedule string = '0 */1 * * * *'

@description('Optional. POLL_TIME_BUDGET_SECONDS: how long one poller run may drain SQS.')
@minValue(1)
@maxValue(570)
param pollTimeBudgetSeconds int = 240

@description('Optional. SQS_WAIT_SECONDS: SQS long-poll wait.')
@minValue(0)
@maxValue(20)
param sqsWaitSeconds int = 20

@description('Optional. SQS_VISIBILITY_TIMEOUT: seconds a received notification stays hidden while it is forwarded.')
@minValue(0)
@maxValue(43200)
param sqsVisibilityTimeout int = 300

@description('Optional. MAX_BATCH_BYTES: largest uncompressed JSON body of one upload.')
@minValue(1024)
@maxValue(1000000)
param maxBatchBytes int = 1000000

@description('Optional. MAX_UPLOADS_IN_FLIGHT: concurrent uploads per object.')
@minValue(1)
@maxValue(32)
param maxUploadsInFlight int = 4

@description('Optional. UPLOAD_MAX_ATTEMPTS: attempts per batch on transient errors.')
@minValue(1)
@maxValue(20)
param uploadMaxAttempts int = 6

@description('Optional. UPLOAD_BACKOFF_BASE_SECONDS: first retry delay in seconds (a decimal number as a string, e.g. 1.0).')
param uploadBackoffBaseSeconds string = '1.0'

@description('Optional. UPLOAD_BACKOFF_MAX_SECONDS: largest retry delay in seconds.')
@minValue(0)
@maxValue(600)
param uploadBackoffMaxSeconds int = 60

@description('Optional. MAX_DECOMPRESSED_BYTES: most bytes one object may decompress to (a string: the default 10 GiB exceeds a Bicep int32 only in some tools).')
param maxDecompressedBytes string = '10737418240'

@description('Optional. MAX_EXPANSION_RATIO: most decompressed bytes per stored byte (after the first 16 MiB).')
@minValue(10)
@maxValue(100000)
param maxExpansionRatio int = 1000

@description('Optional. CIRCUIT_FAILURE_THRESHOLD: objects in a row failing transiently before the circuit of their Logs Ingestion endpoint opens.')
@minValue(1)
@maxValue(100)
param circuitFailureThreshold int = 3

@description('Optional. CIRCUIT_COOLDOWN_SECONDS: how long an open circuit defers work before one trial object.')
@minValue(1)
@maxValue(600)
param circuitCooldownSeconds int = 30

@description('Optional. Most instances the Flex Consumption app scales out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Optional. Instance memory of the Flex Consumption app, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Optional. Replication of the storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param storageSkuName string = 'Standard_ZRS'

@description('Optional. Interactive retention of the custom (_CL) tables, in days.')
@minValue(4)
@maxValue(730)
param customTableRetentionInDays int = 90

@description('Optional. Resource id of an action group the alert rules notify; empty = no notification.')
param actionGroupResourceId string = ''

@description('Optional. Alert when the p95 end-to-end latency (S3 event to accepted) exceeds this many seconds.')
@minValue(1)
param latencyP95ThresholdSeconds int = 900

@description('Optional. Alert when more than this percentage of objects were retried, partial or dead-lettered.')
@minValue(0)
@maxValue(100)
param failureRateThresholdPercent int = 5

@description('Optional. Create the alert rules enabled.')
param alertsEnabled bool = true

@description('Optional. Private-network mode: storage and Key Vault get publicNetworkAccess Disabled and private endpoints, the Function App VNet integration with outbound through a NAT gateway (one static IP). Off by default.')
param privateNetworking bool = false

@description('Optional. Address space of the virtual network (private-network mode only).')
param virtualNetworkAddressPrefix string = '10.40.0.0/24'

@description('Optional. Subnet of the Function App VNet integration, inside virtualNetworkAddressPrefix (private-network mode only).')
param appSubnetAddressPrefix string = '10.40.0.0/26'

@description('Optional. Subnet of the private endpoints, inside virtualNetworkAddressPrefix (private-network mode only).')
param privateEndpointSubnetAddressPrefix string = '10.40.0.64/27'

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------
var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var baseName = '${environmentName}-${resourceToken}'
var functionAppName = '${abbrs.webSitesFunctions}awss3-${baseName}'
var deploymentContainerName = 'app-package-${take(resourceToken, 8)}'
var allTags = union(tags, {
  'azd-env-name': environmentName
  workload: 'aws-s3-sentinel-connector'
})

var workspaceSegments = split(logAnalyticsWorkspaceResourceId, '/')
var dataPlaneAccess = privateNetworking ? 'Disabled' : 'Enabled'
// private-network mode: one endpoint per sub-resource the app uses
var privateEndpoints = [
  {
    name: 'blob'
    target: 'storage'
  }
  {
    name: 'queue'
    target: 'storage'
  }
  {
    name: 'table'
    target: 'storage'
  }
  {
    name: 'vault'
    target: 'keyVault'
  }
]

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------
resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: last(workspaceSegments)
  scope: resourceGroup(workspaceSegments[2], workspaceSegments[4])
}

module identity 'modules/identity.bicep' = {
  name: '${deployment().name}-identity'
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}awss3-${baseName}'
    location: location
    tags: allTags
  }
}

module storage 'modules/storage.bicep' = {
  name: '${deployment().name}-storage'
  params: {
    name: take('${abbrs.storageStorageAccounts}awss3${resourceToken}', 24)
    location: location
    tags: allTags
    skuName: storageSkuName
    workQueueName: workQueueName
    checkpointTableName: checkpointTableName
    deploymentContainerName: deploymentContainerName
    principalId: identity.outputs.principalId
    logAnalyticsWorkspaceResourceId: logAnalyticsWorkspaceResourceId
    publicNetworkAccess: dataPlaneAccess
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: '${deployment().name}-keyvault'
  params: {
    name: take('${abbrs.keyVaultVaults}awss3-${resourceToken}', 24)
    location: location
    tags: allTags
    principalId: identity.outputs.principalId
    logAnalyticsWorkspaceResourceId: logAnalyticsWorkspaceResourceId
    publicNetworkAccess: dataPlaneAccess
  }
}

module network 'modules/network.bicep' = if (privateNetworking) {
  name: '${deployment().name}-network'
  params: {
    name: 'awss3-${baseName}'
    location: location
    tags: allTags
    addressPrefix: virtualNetworkAddressPrefix
    appSubnetPrefix: appSubnetAddressPrefix
    endpointSubnetPrefix: privateEndpointSubnetAddressPrefix
  }
}

module endpoints 'modules/private-endpoint.bicep' = [for ep in privateEndpoints: if (privateNetworking) {
  name: '${deployment().name}-pe-${ep.name}'
  params: {
    name: 'pe-${ep.name}-awss3-${baseName}'
    location: location
    tags: allTags
    subnetResourceId: privateNetworking ? network.outputs.endpointSubnetResourceId : ''
    targetResourceId: ep.target == 'keyVault' ? keyVault.outputs.resourceId : storage.outputs.resourceId
    groupId: ep.name
    privateDnsZoneResourceId: privateNetworking ? network.outputs.dnsZoneIds[ep.name] : ''
  }
}]

module appInsights 'modules/app-insights.bicep' = {
  name: '${deployment().name}-appinsights'
  params: {
    name: '${abbrs.insightsComponents}awss3-${baseName}'
    location: location
    tags: allTags
    logAnalyticsWorkspaceResourceId: logAnalyticsWorkspaceResourceId
    principalId: identity.outputs.principalId
  }
}

// Generated from shared/schemas/*.json by tools/gen_bicep_streams.py: custom tables + DCRs.
module streams 'streams.bicep' = {
  name: '${deployment().name}-streams'
  params: {
    dcrNamePrefix: '${abbrs.insightsDataCollectionRules}awss3-${baseName}'
    location: workspace.location
    logAnalyticsWorkspaceResourceId: logAnalyticsWorkspaceResourceId
    principalId: identity.outputs.principalId
    customTableRetentionInDays: customTableRetentionInDays
    tags: allTags
  }
}

// Every setting the app reads (shared/config.py SETTINGS_DOC) plus the host's own settings.
// tools/validate_infra.py checks both directions. No secret values: AWS keys stay in Key Vault
// and the app reads them by the secret names inside AWS_SOURCES.
var appSettings = {
  // Functions host: identity-based storage connection (no connection string, shared keys off).
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  AzureWebJobsStorage__blobServiceUri: storage.outputs.blobServiceUri
  AzureWebJobsStorage__queueServiceUri: storage.outputs.queueServiceUri
  AzureWebJobsStorage__tableServiceUri: storage.outputs.tableServiceUri
  // Application Insights with Entra ID authentication (local auth is disabled).
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
  // Two Python worker processes per instance: parsing holds the GIL, one process uses one core;
  // measured 2 processes over 1 in benchmarks/results.json (`processes`), README "Performance".
  FUNCTIONS_WORKER_PROCESS_COUNT: '2'
  // Connector.
  AWS_SOURCES: string(awsSources)
  // Default DCR (DCR 1) and, per table, the DCR that holds its stream: a DCR takes at most 10
  // streams, so the streams are spread over several (see infra/README.md, DCR limit).
  LOGS_INGESTION_ENDPOINT: streams.outputs.dcrs[0].logsIngestionEndpoint
  DCR_IMMUTABLE_ID: streams.outputs.dcrs[0].immutableId
  DCR_ROUTES: string(streams.outputs.dcrRoutes)
  AZURE_CLIENT_ID: identity.outputs.clientId
  AWS_WEB_IDENTITY_AUDIENCE: awsWebIdentityAudience
  KEY_VAULT_URL: keyVault.outputs.uri
  WORK_QUEUE: storage.outputs.workQueueName
  POISON_QUEUE: storage.outputs.poisonQueueName
  CHECKPOINT_TABLE: storage.outputs.checkpointTableName
  POLL_SCHEDULE: pollSchedule
  POLL_TIME_BUDGET_SECONDS: string(pollTimeBudgetSeconds)
  SQS_WAIT_SECONDS: string(sqsWaitSeconds)
  SQS_VISIBILITY_TIMEOUT: string(sqsVisibilityTimeout)
  MAX_BATCH_BYTES: string(maxBatchBytes)
  MAX_UPLOADS_IN_FLIGHT: string(maxUploadsInFlight)
  UPLOAD_MAX_ATTEMPTS: string(uploadMaxAttempts)
  UPLOAD_BACKOFF_BASE_SECONDS: uploadBackoffBaseSeconds
  UPLOAD_BACKOFF_MAX_SECONDS: string(uploadBackoffMaxSeconds)
  MAX_DECOMPRESSED_BYTES: maxDecompressedBytes
  MAX_EXPANSION_RATIO: string(maxExpansionRatio)
  CIRCUIT_FAILURE_THRESHOLD: string(circuitFailureThreshold)
  CIRCUIT_COOLDOWN_SECONDS: string(circuitCooldownSeconds)
}

module functionApp 'modules/function-app.bicep' = {
  name: '${deployment().name}-functionapp'
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}awss3-${baseName}'
    location: location
    tags: allTags
    identityResourceId: identity.outputs.resourceId
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appSettings: appSettings
    pythonVersion: '3.11'
    logAnalyticsWorkspaceResourceId: logAnalyticsWorkspaceResourceId
    virtualNetworkSubnetResourceId: privateNetworking ? network.outputs.appSubnetResourceId : ''
    scale: {
      maximumInstanceCount: maximumInstanceCount
      instanceMemoryMB: instanceMemoryMB
    }
  }
}

module workbook 'modules/workbook.bicep' = {
  name: '${deployment().name}-workbook'
  params: {
    displayName: 'AWS S3 connector - pipeline health (${environmentName})'
    logAnalyticsWorkspaceResourceId: logAnalyticsWorkspaceResourceId
    location: location
    tags: allTags
  }
}

module alerts 'modules/alerts.bicep' = {
  name: '${deployment().name}-alerts'
  dependsOn: [
    streams
  ]
  params: {
    namePrefix: '${abbrs.insightsScheduledQueryRules}awss3-${baseName}'
    logAnalyticsWorkspaceResourceId: logAnalyticsWorkspaceResourceId
    location: location
    tags: allTags
    actionGroupResourceId: actionGroupResourceId
    latencyP95ThresholdSeconds: latencyP95ThresholdSeconds
    failureRateThresholdPercent: failureRateThresholdPercent
    enabled: alertsEnabled
  }
}

// ---------------------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------------------
@description('Name of the Function App.')
output functionAppName string = functionApp.outputs.name

@description('Health endpoint (GET with a function key: ?code=<key>).')
output healthUrl string = 'https://${functionApp.outputs.defaultHostName}/api/health'

@description('Client id of the app identity (AZURE_CLIENT_ID).')
output identityClientId string = identity.outputs.clientId

@description('Principal (object) id of the app identity: the subject (sub) the AWS role trust policy pins (CloudFormation parameter ManagedIdentityObjectId).')
output identityPrincipalId string = identity.outputs.principalId

@description('Tenant id: the AWS IAM OIDC provider URL is https://sts.windows.net/<tenantId>/.')
output tenantId string = tenant().tenantId

@description('Key Vault URI (KEY_VAULT_URL) for the AWS access-key mode.')
output keyVaultUri string = keyVault.outputs.uri

@description('Name of the Key Vault.')
output keyVaultName string = keyVault.outputs.name

@description('Name of the storage account (queues, checkpoint table, deployment container).')
output storageAccountName string = storage.outputs.name

@description('LOGS_INGESTION_ENDPOINT as set on the app (DCR 1, the default route).')
output logsIngestionEndpoint string = streams.outputs.dcrs[0].logsIngestionEndpoint

@description('DCR_IMMUTABLE_ID as set on the app (DCR 1, the default route).')
output dcrImmutableId string = streams.outputs.dcrs[0].immutableId

@description('Every DCR with its immutableId, logsIngestionEndpoint and tables (the service allows 10 streams per DCR).')
output dcrs array = streams.outputs.dcrs

@description('DCR_ROUTES as set on the app: table -> {endpoint, dcrImmutableId} of the DCR holding its stream.')
output dcrRoutes object = streams.outputs.dcrRoutes

@description('Resource id of the pipeline health workbook.')
output workbookResourceId string = workbook.outputs.resourceId

@description('Static public IP the app calls AWS from in private-network mode (empty otherwise); the AWS side may pin it with aws:SourceIp.')
output egressIpAddress string = privateNetworking ? network.outputs.egressIpAddress : ''

@description('Resource ids of the alert rules.')
output alertRuleResourceIds array = alerts.outputs.resourceIds
