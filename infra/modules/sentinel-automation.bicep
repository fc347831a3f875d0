// Deployed to the Sentinel workspace's resource group: the automation rule that runs the relay Logic App on every
// new incident. Sentinel runs it as the Azure Security Insights service principal, which needs Microsoft Sentinel
// Automation Contributor on the relay's resource group first (main.bicep, relayRoles).

param workspaceName string
param relayLogicAppId string

@description('Where the rule sits among the workspace\'s automation rules (1 runs first)')
@minValue(1)
@maxValue(1000)
param order int = 100

@description('Incident severities that are relayed; empty relays every new incident')
param severities array = []

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

var severityCondition = [
  {
    conditionType: 'Property'
    conditionProperties: {
      propertyName: 'IncidentSeverity'
      operator: 'Equals'
      propertyValues: severities
    }
  }
]

resource relayRule 'Microsoft.SecurityInsights/automationRules@2023-02-01' = {
  scope: workspace
  name: guid(workspace.id, relayLogicAppId, 'riposte-relay')
  properties: {
    displayName: 'Riposte: relay new incidents'
    order: order
    triggeringLogic: {
      isEnabled: true
      triggersOn: 'Incidents'
      triggersWhen: 'Created'
      conditions: empty(severities) ? [] : severityCondition
    }
    actions: [
      {
        order: 1
        actionType: 'RunPlaybook'
        actionConfiguration: {
          logicAppResourceId: relayLogicAppId
          tenantId: tenant().tenantId
        }
      }
    ]
  }
}

output id string = relayRule.id
