metadata name = 'Pipeline health alert rules'
metadata description = 'Log search alerts on AWSS3ConnectorHealth_CL: no heartbeat, dead-lettered or poisoned items, p95 latency and failure rate over thresholds, a source whose poller runs all fail, a table holding fewer rows than were accepted for it.'

@description('Required. Name prefix of the alert rules.')
param namePrefix string

@description('Required. Resource id of the Log Analytics workspace the rules query.')
param logAnalyticsWorkspaceResourceId string

@description('Optional. Region.')
param location string = resourceGroup().location

@description('Optional. Tags.')
param tags object = {}

@description('Optional. Resource id of an action group to notify; empty = alerts are only shown in Azure Monitor.')
param actionGroupResourceId string = ''

@description('Optional. Fire when the p95 end-to-end latency over 30 minutes exceeds this many seconds.')
@minValue(1)
param latencyP95ThresholdSeconds int = 900

@description('Optional. Fire when more than this percentage of processing attempts over 30 minutes were retried, partial or dead-lettered (duplicate, skipped and deferred objects are not counted).')
@minValue(0)
@maxValue(100)
param failureRateThresholdPercent int = 5

@description('Optional. Create the rules enabled.')
param enabled bool = true

var actions = {
  actionGroups: empty(actionGroupResourceId) ? [] : [
    actionGroupResourceId
  ]
}

// Queries are checked offline against shared/schemas (tools/validate_infra.py). Server-side
// validation is skipped because a custom table created in the same deployment can take minutes
// before it answers queries.
resource noHeartbeat 'Microsoft.Insights/scheduledQueryRules@2021-08-01' = {
  name: '${namePrefix}-no-heartbeat'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'AWS S3 connector: no heartbeat for 15 minutes'
    description: 'The SQS poller wrote no heartbeat row in 15 minutes: the Function App is stopped, failing to start, or cannot write to the DCR. Health rows are also not sent while the ingestion circuit breaker is open (the Logs Ingestion API keeps failing).'
    severity: 1
    enabled: enabled
    scopes: [
      logAnalyticsWorkspaceResourceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../queries/alert-no-heartbeat.kql')
          timeAggregation: 'Total'
          metricMeasureColumn: 'Heartbeats'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    skipQueryValidation: true
    actions: actions
  }
}

resource deadLettered 'Microsoft.Insights/scheduledQueryRules@2021-08-01' = {
  name: '${namePrefix}-dead-lettered'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'AWS S3 connector: items dead-lettered or poisoned'
    description: 'An object or some of its records were dead-lettered (Outcome dead_lettered or partial, RecordsDropped > 0), an SQS notification was poisoned, or the poison queue is not empty. See the workbook (Dead-lettered objects and records by reason) and replay with python -m shared replay.'
    severity: 2
    enabled: enabled
    scopes: [
      logAnalyticsWorkspaceResourceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../queries/alert-dead-lettered.kql')
          timeAggregation: 'Total'
          metricMeasureColumn: 'Items'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    skipQueryValidation: true
    actions: actions
  }
}

resource latencyP95 'Microsoft.Insights/scheduledQueryRules@2021-08-01' = {
  name: '${namePrefix}-latency-p95'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'AWS S3 connector: p95 latency over ${latencyP95ThresholdSeconds} s'
    description: 'The 95th percentile of the time from the S3 event to acceptance by the Logs Ingestion API exceeded the threshold.'
    severity: 3
    enabled: enabled
    scopes: [
      logAnalyticsWorkspaceResourceId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../queries/alert-latency-p95.kql')
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'P95LatencySeconds'
          operator: 'GreaterThan'
          threshold: latencyP95ThresholdSeconds
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    skipQueryValidation: true
    actions: actions
  }
}

resource failureRate 'Microsoft.Insights/scheduledQueryRules@2021-08-01' = {
  name: '${namePrefix}-failure-rate'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'AWS S3 connector: failure rate over ${failureRateThresholdPercent}%'
    description: 'Share of processing attempts that were retried, partially delivered or dead-lettered exceeded the threshold. Duplicate, skipped and deferred (circuit open) objects are not counted.'
    severity: 2
    enabled: enabled
    scopes: [
      logAnalyticsWorkspaceResourceId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../queries/alert-failure-rate.kql')
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'FailureRatePercent'
          operator: 'GreaterThan'
          threshold: failureRateThresholdPercent
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    skipQueryValidation: true
    actions: actions
  }
}

resource pollerFailing 'Microsoft.Insights/scheduledQueryRules@2021-08-01' = {
  name: '${namePrefix}-poller-failing'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'AWS S3 connector: every poller run of a source failed for 15 minutes'
    description: 'Heartbeats of the source arrive with Outcome error and none with ok: its notifications stay in SQS (AWS credentials, role trust, queue URL or the Azure work queue). One alert per source; the error text is in the workbook (Poller runs that failed).'
    severity: 2
    enabled: enabled
    scopes: [
      logAnalyticsWorkspaceResourceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../queries/alert-poller-failing.kql')
          timeAggregation: 'Total'
          metricMeasureColumn: 'SuccessfulRuns'
          dimensions: [
            {
              name: 'SourceName'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    skipQueryValidation: true
    actions: actions
  }
}

// Reconciliation: accepted records (health rows) vs. rows the table holds, per table, for the
// hour that ended at least an hour ago. The 2-day window is what the query's table side needs
// (it filters by ingestion_time(); the rule's window filters TimeGenerated, the event's time).
resource reconciliation 'Microsoft.Insights/scheduledQueryRules@2021-08-01' = {
  name: '${namePrefix}-reconciliation'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'AWS S3 connector: a table holds less than 99 % of the records accepted for it'
    description: 'In the hour that ended at least an hour ago, a table holds fewer than 99 % of the records the health rows say the Logs Ingestion API accepted for it (at least 100 records): a DCR transformation dropping rows, a stream routed to another table, a column the table lacks. See the workbook section Reconciliation and README (what it can and cannot see).'
    severity: 2
    enabled: enabled
    scopes: [
      logAnalyticsWorkspaceResourceId
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'P2D'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../queries/alert-reconciliation.kql')
          timeAggregation: 'Total'
          metricMeasureColumn: 'ShortTables'
          dimensions: [
            {
              name: 'TargetTable'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    skipQueryValidation: true
    actions: actions
  }
}

@description('Resource ids of the alert rules.')
output resourceIds array = [
  noHeartbeat.id
  deadLettered.id
  latencyP95.id
  failureRate.id
  pollerFailing.id
  reconciliation.id
]
