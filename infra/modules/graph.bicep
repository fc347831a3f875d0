// Microsoft Entra ID objects, through the Microsoft Graph Bicep extension (bicepconfig.json). The deploying account
// needs the Privileged Role Administrator role (it grants application permissions) or Global Administrator; without
// it, deploy with useGraphExtension=false and have an administrator run scripts/grant-graph-permissions.sh.
//
// checkov cannot parse the `extension` keyword, and has no policies for Microsoft.Graph types: the Makefile's
// checkov target skips this one file (see the reason there).

extension microsoftGraphV1

@description('Object id of Riposte\'s managed identity')
param principalId string

@description('Tenant-unique name of the API app registration analysts\' tokens are issued for')
param apiAppUniqueName string
param apiAppDisplayName string

@description('Grant the WindowsDefenderATP application permissions too (the tenant has Defender for Endpoint)')
param grantDefenderForEndpoint bool = false

// Generated from the action registry by tools/gen_permissions.py: one app role per Graph permission an action needs.
var graphGrants = loadJsonContent('../graph-permissions.json')

// Microsoft's first-party applications; their service principals' object ids differ per tenant.
var securityInsightsAppId = '98785600-1bb7-4fb9-b9fa-19afe2c8a360' // Azure Security Insights (Microsoft Sentinel)

resource graph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: graphGrants.resourceAppId
}

resource grants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for grant in graphGrants.grants: {
    principalId: principalId
    resourceId: graph.id
    appRoleId: grant.appRoleId
  }
]

// Defender for Endpoint's API (generated list, like graphGrants). Its app role ids are not published, so each grant
// looks its role up by value among the WindowsDefenderATP service principal's application roles.
var mdeGrants = loadJsonContent('../mde-permissions.json')

resource mde 'Microsoft.Graph/servicePrincipals@v1.0' existing = if (grantDefenderForEndpoint) {
  appId: mdeGrants.resourceAppId
}

resource mdeRoleGrants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for grant in mdeGrants.grants: if (grantDefenderForEndpoint) {
    principalId: principalId
    resourceId: mde.id
    appRoleId: first(filter(
      mde.appRoles,
      role => role.value == grant.permission && contains(role.allowedMemberTypes, 'Application')
    )).id
  }
]

resource securityInsights 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: securityInsightsAppId
}

// The app roles shared/api/auth.py checks on analyst routes. Assign them to SOC groups in Enterprise applications.
var appRoles = [
  {
    value: 'Riposte.Read'
    displayName: 'Riposte reader'
    description: 'See playbooks, runs and their timelines.'
  }
  {
    value: 'Riposte.Run'
    displayName: 'Riposte operator'
    description: 'Start a playbook by hand and roll a run back.'
  }
  {
    value: 'Riposte.Approve'
    displayName: 'Riposte approver'
    description: 'Approve or reject a step that waits for approval.'
  }
]

resource apiApp 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: apiAppUniqueName
  displayName: apiAppDisplayName
  signInAudience: 'AzureADMyOrg'
  api: {
    // v2 tokens: aud is the client id, iss is https://login.microsoftonline.com/{tenant}/v2.0.
    requestedAccessTokenVersion: 2
  }
  appRoles: [
    for role in appRoles: {
      id: guid(apiAppUniqueName, role.value)
      value: role.value
      displayName: role.displayName
      description: role.description
      allowedMemberTypes: [
        'User'
        'Application'
      ]
      isEnabled: true
    }
  ]
}

resource apiServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: apiApp.appId
  // Only users, groups and applications assigned an app role can get a token for the API.
  appRoleAssignmentRequired: true
}

output securityInsightsPrincipalId string = securityInsights.id
output apiClientId string = apiApp.appId
output grantedPermissions array = [for grant in graphGrants.grants: grant.permission]
output grantedDefenderPermissions array = grantDefenderForEndpoint ? map(mdeGrants.grants, grant => grant.permission) : []
