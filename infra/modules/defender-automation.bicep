// Defender for Cloud workflow automation: runs the Defender relay Logic App for each new security alert in scope.
// Defender for Cloud does not publish alerts to Event Grid; workflow automation (or continuous export to Event Hubs
// or a workspace) is how its alerts leave it, and this is the one that can call a Logic App per alert.

param name string
param location string
param tags object = {}

param relayLogicAppName string
param relayTriggerName string

@description('Alert severities relayed (High, Medium, Low, Informational); empty relays every alert')
param severities array = [
  'High'
  'Medium'
]

@description('Scopes (subscription or resource group ids) whose alerts are relayed')
param scopes array

resource relay 'Microsoft.Logic/workflows@2019-05-01' existing = {
  name: relayLogicAppName
}

// Rule sets are OR-ed: one per severity, written in lower case as Defender for Cloud's own export policies write them.
var ruleSets = [
  for severity in severities: {
    rules: [
      {
        propertyJPath: 'Severity'
        propertyType: 'String'
        expectedValue: toLower(severity)
        operator: 'Equals'
      }
    ]
  }
]

resource automation 'Microsoft.Security/automations@2023-12-01-preview' = {
  name: name
  location: location
  tags: tags
  properties: {
    description: 'Riposte: relay Defender for Cloud alerts to /api/incidents'
    isEnabled: true
    scopes: [
      for scope in scopes: {
        description: 'Alerts raised in ${scope}'
        scopePath: scope
      }
    ]
    sources: [
      {
        eventSource: 'Alerts'
        ruleSets: ruleSets
      }
    ]
    actions: [
      {
        actionType: 'LogicApp'
        logicAppResourceId: relay.id
        uri: listCallbackUrl(resourceId('Microsoft.Logic/workflows/triggers', relay.name, relayTriggerName), '2019-05-01').value
      }
    ]
  }
}

output id string = automation.id
