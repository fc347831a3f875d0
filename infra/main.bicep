// Riposte in one subscription: the Function App and what it needs in its own resource group, the roles its managed
// identity holds at the resource groups it acts on, its Microsoft Graph permissions, and the relays that bring
// Sentinel incidents and Defender for Cloud alerts to it. docs/deploying.md walks through every parameter;
// docs/permissions.md lists every permission and role, generated from the action registry.

targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('Name of the environment (azd): part of every resource name, and of the resource group name')
param environmentName string

@minLength(1)
@description('Region of the Function App and everything in Riposte\'s resource group; it must offer Flex Consumption')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Riposte\'s resource group (created); default rg-riposte-<environmentName>')
param resourceGroupName string = ''

// --- what Riposte works on -------------------------------------------------------------------------------------

@description('ARM id of the Log Analytics workspace Microsoft Sentinel is enabled on')
param sentinelWorkspaceResourceId string

@description('Resource groups of this subscription holding the VMs, NICs and NSGs Riposte may act on')
param targetResourceGroups array = []

@description('Resource group of the region\'s Network Watcher (packet captures); empty skips its roles')
param networkWatcherResourceGroup string = 'NetworkWatcherRG'

@description('ARM id of the storage account packet captures are written to; empty: no packet captures')
param captureStorageAccountId string = ''

// --- Microsoft Entra ID ----------------------------------------------------------------------------------------

@description('Grant the Graph permissions, create the API app registration and look up Sentinel\'s service principal with the Microsoft Graph Bicep extension (needs Privileged Role Administrator). false: run scripts/grant-graph-permissions.sh as an administrator and pass authApiClientId and azureSecurityInsightsPrincipalId')
param useGraphExtension bool = true

@description('With useGraphExtension: also grant the Defender for Endpoint (WindowsDefenderATP) application permissions of the mde.* actions. The tenant must have Defender for Endpoint, whose service principal holds those app roles')
param grantDefenderForEndpoint bool = false

@description('With useGraphExtension=false: client id of the API app registration analysts\' tokens are issued for')
param authApiClientId string = ''

@description('With useGraphExtension=false: object id of the Azure Security Insights service principal (az ad sp show --id 98785600-1bb7-4fb9-b9fa-19afe2c8a360 --query id -o tsv); empty skips the Sentinel automation rule')
param azureSecurityInsightsPrincipalId string = ''

@allowed([
  'entra'
  'function_key'
])
@description('entra: analyst routes need an Entra ID app role; function_key: the function key alone (no app registration)')
param authMode string = 'entra'

@description('Turn on App Service Authentication (Entra ID, the API app registration) in front of the app and trust its X-MS-CLIENT-PRINCIPAL as well as bearer tokens. Needs the API app registration: useGraphExtension, or authApiClientId')
param trustAppServiceAuth bool = false

// --- relays -----------------------------------------------------------------------------------------------------

@description('Deploy the Sentinel relay Logic App and the automation rule that runs it on new incidents')
param deploySentinelRelay bool = true

@description('Incident severities the automation rule relays; empty relays every new incident')
param sentinelRelaySeverities array = []

@description('Entity kinds to deploy a Sentinel entity relay for: each is a playbook an analyst can run on such an entity in the portal ("Run playbook"), posting the entity to Riposte')
param sentinelEntityRelayKinds array = [
  'Account'
  'Host'
  'IP'
]

@description('Deploy the Logic Apps custom connector (infra/connector/riposte.swagger.json) for Logic Apps authors')
param deployConnector bool = true

@description('Deploy the Defender for Cloud relay Logic App and the workflow automation that runs it on new alerts')
param deployDefenderRelay bool = true

@description('Defender for Cloud alert severities relayed')
param defenderAlertSeverities array = [
  'High'
  'Medium'
]

// --- guardrails and responders (the RIPOSTE_* settings; shared/settings.py documents each) ----------------------

@description('RIPOSTE_PROTECTED_USERS: object ids or UPNs automation must never act on (break-glass accounts)')
param protectedUsers array = []

@description('RIPOSTE_PROTECTED_GROUPS: group object ids whose members are protected')
param protectedGroups array = []

@description('RIPOSTE_PROTECTED_RESOURCE_PREFIXES: ARM id prefixes that are protected')
param protectedResourcePrefixes array = []

@description('RIPOSTE_PROTECTED_RESOURCE_TAGS: key=value tags that protect a resource')
param protectedResourceTags array = [
  'riposte-protected=true'
]

@minValue(0)
@description('RIPOSTE_DESTRUCTIVE_ACTIONS_PER_HOUR: cap on destructive actions per hour')
param destructiveActionsPerHour int = 20

@description('RIPOSTE_ISOLATION_ALLOWED_PREFIXES: management prefixes still allowed in and out of an isolated VM')
param isolationAllowedPrefixes array = []

@description('RIPOSTE_BLOCK_IP_NSGS: ARM ids of the NSGs network.block_ip writes deny rules to')
param blockIpNsgIds array = []

@description('RIPOSTE_PROTECTED_IP_RANGES: address prefixes Riposte never blocks (its own egress, management ranges)')
param protectedIpRanges array = []

@description('RIPOSTE_BLOCKED_IPS_NAMED_LOCATION_ID: object id of the Conditional Access IP named location entra.block_ip_in_named_location adds addresses to')
param blockedIpsNamedLocationId string = ''

@secure()
@description('RIPOSTE_NOTIFY_WEBHOOK_URL: Teams-compatible incoming webhook for notify.send_webhook (a secret)')
param notifyWebhookUrl string = ''

// --- scale --------------------------------------------------------------------------------------------------------

@minValue(1)
@maxValue(1000)
@description('Most Function App instances: Graph, Sentinel and Log Analytics limits cap useful parallelism anyway')
param maximumInstanceCount int = 40

var tags = {
  'azd-env-name': environmentName
  application: 'riposte'
}
var token = toLower(uniqueString(subscription().id, environmentName, location))
var workspaceParts = split(sentinelWorkspaceResourceId, '/')
var workspaceSubscriptionId = workspaceParts[2]
var workspaceResourceGroup = workspaceParts[4]
var workspaceName = workspaceParts[8]
// ARM evaluates a skipped module's scope too: placeholders keep those expressions valid when a feature is off.
var captureParts = split(captureStorageAccountId, '/')
var hasCapture = length(captureParts) > 8
var captureSubscriptionId = hasCapture ? captureParts[2] : subscription().subscriptionId
var captureResourceGroup = hasCapture ? captureParts[4] : 'unused'
var captureAccountName = hasCapture ? captureParts[8] : 'unused'
var networkWatcherGroup = empty(networkWatcherResourceGroup) ? 'unused' : networkWatcherResourceGroup

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-riposte-${environmentName}'
  location: location
  tags: tags
}

resource sentinelWorkspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  scope: resourceGroup(workspaceSubscriptionId, workspaceResourceGroup)
  name: workspaceName
}

module identity 'modules/identity.bicep' = {
  name: 'riposte-identity'
  scope: rg
  params: {
    name: 'id-riposte-${token}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'riposte-monitoring'
  scope: rg
  params: {
    workspaceName: 'log-riposte-${token}'
    applicationInsightsName: 'appi-riposte-${token}'
    location: location
    tags: tags
  }
}

var deploymentContainerName = 'app-package-${token}'

module storage 'modules/storage.bicep' = {
  name: 'riposte-storage'
  scope: rg
  params: {
    name: 'striposte${take(token, 13)}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
  }
}

module graph 'modules/graph.bicep' = if (useGraphExtension) {
  name: 'riposte-graph'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    apiAppUniqueName: 'riposte-api-${environmentName}-${token}'
    apiAppDisplayName: 'Riposte API (${environmentName})'
    grantDefenderForEndpoint: grantDefenderForEndpoint
  }
}

var apiClientId = useGraphExtension ? graph.outputs.apiClientId : authApiClientId
var securityInsightsPrincipalId = useGraphExtension ? graph.outputs.securityInsightsPrincipalId : azureSecurityInsightsPrincipalId

// Every RIPOSTE_* setting the app reads, except those tests/infra lists as left to their defaults (with the reason).
var riposteSettings = {
  RIPOSTE_MANAGED_IDENTITY_CLIENT_ID: identity.outputs.clientId
  RIPOSTE_SUBSCRIPTION_ID: subscription().subscriptionId
  RIPOSTE_WORKSPACE_ID: sentinelWorkspace.properties.customerId
  RIPOSTE_SENTINEL_WORKSPACE: sentinelWorkspace.id
  RIPOSTE_AUTH_MODE: authMode
  RIPOSTE_AUTH_TENANT_ID: tenant().tenantId
  RIPOSTE_AUTH_AUDIENCE: apiClientId
  // true only with App Service Authentication deployed (functionapp.bicep); Riposte refuses it otherwise
  RIPOSTE_TRUST_APP_SERVICE_AUTH: string(trustAppServiceAuth && !empty(apiClientId))
  RIPOSTE_PROTECTED_USERS: join(protectedUsers, ',')
  RIPOSTE_PROTECTED_GROUPS: join(protectedGroups, ',')
  RIPOSTE_PROTECTED_RESOURCE_PREFIXES: join(protectedResourcePrefixes, ',')
  RIPOSTE_PROTECTED_RESOURCE_TAGS: join(protectedResourceTags, ',')
  RIPOSTE_DESTRUCTIVE_ACTIONS_PER_HOUR: string(destructiveActionsPerHour)
  RIPOSTE_ISOLATION_ALLOWED_PREFIXES: join(isolationAllowedPrefixes, ',')
  RIPOSTE_BLOCK_IP_NSGS: join(blockIpNsgIds, ',')
  RIPOSTE_PROTECTED_IP_RANGES: join(protectedIpRanges, ',')
  RIPOSTE_BLOCKED_IPS_NAMED_LOCATION_ID: blockedIpsNamedLocationId
  RIPOSTE_CAPTURE_STORAGE_ACCOUNT_ID: captureStorageAccountId
  RIPOSTE_NOTIFY_WEBHOOK_URL: notifyWebhookUrl
  // Flex Consumption scales the queue workers out: their limiters share one budget per tenant in table storage.
  RIPOSTE_LIMITER: 'shared'
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'riposte-functionapp'
  scope: rg
  params: {
    name: 'func-riposte-${token}'
    planName: 'plan-riposte-${token}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    riposteSettings: riposteSettings
    maximumInstanceCount: maximumInstanceCount
    appServiceAuthentication: trustAppServiceAuth && !empty(apiClientId)
    authClientId: apiClientId
  }
}

// --- role assignments: role definition ids, each at a resource group or a single resource -------------------------

// Riposte's custom roles (exactly the operations its actions perform), assignable only where they are assigned.
var targetGroupIds = [for target in targetResourceGroups: '${subscription().id}/resourceGroups/${target}']
var watchesNetwork = !empty(networkWatcherResourceGroup) && !empty(targetResourceGroups)
var watcherGroupIds = watchesNetwork ? ['${subscription().id}/resourceGroups/${networkWatcherResourceGroup}'] : []
var captureGroupIds = hasCapture ? ['/subscriptions/${captureSubscriptionId}/resourceGroups/${captureResourceGroup}'] : []
var customRoleScopes = union(targetGroupIds, watcherGroupIds, captureGroupIds)

module roles 'modules/roles.bicep' = {
  name: 'riposte-custom-roles'
  params: {
    environmentName: environmentName
    // A role needs one assignable scope: with nothing to act on, Riposte's own group stands in (nothing is assigned).
    assignableScopes: empty(customRoleScopes) ? [rg.id] : customRoleScopes
  }
}

module storageRoles 'modules/rbac.bicep' = {
  name: 'riposte-storage-roles'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    roleDefinitionIds: [
      'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
      '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
      '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
    ]
  }
}

module platformRoles 'modules/rbac.bicep' = {
  name: 'riposte-platform-roles'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    roleDefinitionIds: [
      '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher
    ]
  }
}

module sentinelRoles 'modules/rbac.bicep' = {
  name: 'riposte-sentinel-roles'
  scope: resourceGroup(workspaceSubscriptionId, workspaceResourceGroup)
  params: {
    principalId: identity.outputs.principalId
    roleDefinitionIds: [
      '3e150937-b8fe-4cfb-8069-0eaf05ecd056' // Microsoft Sentinel Responder
      '8d289c81-5878-46d4-8554-54e1e3d8b5cb' // Microsoft Sentinel Reader
      '73c42c96-874c-492b-b04d-ab87d138a893' // Log Analytics Reader
    ]
  }
}

module targetRoles 'modules/rbac.bicep' = [
  for target in targetResourceGroups: {
    name: 'riposte-target-roles-${uniqueString(target)}'
    scope: resourceGroup(target)
    params: {
      principalId: identity.outputs.principalId
      roleDefinitionIds: [
        roles.outputs.vmResponderRoleId // Riposte VM Responder
        roles.outputs.networkResponderRoleId // Riposte Network Responder
        roles.outputs.defenderResponderRoleId // Riposte Defender Responder
        roles.outputs.storageResponderRoleId // Riposte Storage Responder
        '39bc4728-0917-49c7-9d2c-d95423bc2eb4' // Security Reader
      ]
    }
  }
]

module networkWatcherRoles 'modules/rbac.bicep' = if (!empty(networkWatcherResourceGroup) && !empty(targetResourceGroups)) {
  name: 'riposte-network-watcher-roles'
  scope: resourceGroup(networkWatcherGroup)
  params: {
    principalId: identity.outputs.principalId
    roleDefinitionIds: [
      roles.outputs.networkResponderRoleId // Riposte Network Responder
    ]
  }
}

module captureRoles 'modules/rbac.bicep' = if (hasCapture) {
  name: 'riposte-capture-roles'
  scope: resourceGroup(captureSubscriptionId, captureResourceGroup)
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: captureAccountName
    roleDefinitionIds: [
      roles.outputs.captureStorageRoleId // Riposte Capture Storage
    ]
  }
}

// --- the Logic Apps custom connector --------------------------------------------------------------------------

module connector 'modules/connector.bicep' = if (deployConnector) {
  name: 'riposte-connector'
  scope: rg
  params: {
    name: 'riposte-${token}'
    location: location
    tags: tags
    hostName: replace(functionApp.outputs.url, 'https://', '')
  }
}

// --- relays ---------------------------------------------------------------------------------------------------

var runSentinelRelay = deploySentinelRelay && (useGraphExtension || !empty(azureSecurityInsightsPrincipalId))

module sentinelRelay 'modules/relay.bicep' = if (deploySentinelRelay) {
  name: 'riposte-sentinel-relay'
  scope: rg
  dependsOn: [
    storageRoles // the host keys the relay reads live in the storage account
  ]
  params: {
    source: 'sentinel'
    name: 'logic-riposte-sentinel-${token}'
    location: location
    tags: tags
    functionAppName: functionApp.outputs.name
  }
}

// Started by analysts from an entity, so no automation rule; Sentinel runs them with the same role (relayRoles).
module sentinelEntityRelays 'modules/relay.bicep' = [
  for kind in (deploySentinelRelay ? sentinelEntityRelayKinds : []): {
    name: 'riposte-sentinel-entity-relay-${toLower(kind)}'
    scope: rg
    dependsOn: [
      storageRoles
    ]
    params: {
      source: 'sentinelEntity'
      entityType: kind
      name: 'logic-riposte-entity-${toLower(kind)}-${token}'
      location: location
      tags: tags
      functionAppName: functionApp.outputs.name
    }
  }
]

module relayRoles 'modules/rbac.bicep' = if (runSentinelRelay) {
  name: 'riposte-relay-roles'
  scope: rg
  params: {
    principalId: securityInsightsPrincipalId
    roleDefinitionIds: [
      'f4c81013-99ee-4d62-a7ee-b3f1f648599a' // Microsoft Sentinel Automation Contributor
    ]
  }
}

module sentinelAutomation 'modules/sentinel-automation.bicep' = if (runSentinelRelay) {
  name: 'riposte-sentinel-automation'
  scope: resourceGroup(workspaceSubscriptionId, workspaceResourceGroup)
  dependsOn: [
    relayRoles // Sentinel refuses a rule whose playbook it has no permission to run
  ]
  params: {
    workspaceName: workspaceName
    relayLogicAppId: sentinelRelay.outputs.id
    severities: sentinelRelaySeverities
  }
}

module defenderRelay 'modules/relay.bicep' = if (deployDefenderRelay) {
  name: 'riposte-defender-relay'
  scope: rg
  dependsOn: [
    storageRoles
  ]
  params: {
    source: 'defender'
    name: 'logic-riposte-defender-${token}'
    location: location
    tags: tags
    functionAppName: functionApp.outputs.name
  }
}

module defenderAutomation 'modules/defender-automation.bicep' = if (deployDefenderRelay) {
  name: 'riposte-defender-automation'
  scope: rg
  params: {
    name: 'riposte-defender-alerts-${token}'
    location: location
    tags: tags
    relayLogicAppName: defenderRelay.outputs.name
    relayTriggerName: defenderRelay.outputs.triggerName
    severities: defenderAlertSeverities
    scopes: [
      subscription().id
    ]
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output RIPOSTE_URL string = functionApp.outputs.url
output RIPOSTE_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output RIPOSTE_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output RIPOSTE_API_CLIENT_ID string = apiClientId
output RIPOSTE_GRAPH_PERMISSIONS_GRANTED bool = useGraphExtension
output RIPOSTE_SENTINEL_AUTOMATION_RULE bool = runSentinelRelay
