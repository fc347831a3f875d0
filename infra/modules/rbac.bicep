// The one place roles are assigned: built-in roles and Riposte's custom roles (roles.bicep), by role definition id, to
// one principal at this resource group, or at one storage account in it. main.bicep calls it once per scope; it never
// assigns at a subscription.

@description('Object id of the principal that gets the roles')
param principalId string

@allowed([
  'ServicePrincipal'
  'Group'
  'User'
])
param principalType string = 'ServicePrincipal'

@description('Role definition ids (GUIDs), each listed with its name in main.bicep')
param roleDefinitionIds array

@description('When set, the roles are scoped to this storage account of the resource group, not the whole group')
param storageAccountName string = ''

var onAccount = !empty(storageAccountName)

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = if (onAccount) {
  name: onAccount ? storageAccountName : 'unused'
}

resource groupAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in roleDefinitionIds: if (!onAccount) {
    name: guid(resourceGroup().id, principalId, roleId)
    properties: {
      principalId: principalId
      principalType: principalType
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    }
  }
]

resource accountAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in roleDefinitionIds: if (onAccount) {
    name: guid(resourceGroup().id, storageAccountName, principalId, roleId)
    scope: account
    properties: {
      principalId: principalId
      principalType: principalType
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    }
  }
]
