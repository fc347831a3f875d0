// Riposte's custom roles: exactly the ARM operations its actions perform (shared/actions/roles.py), instead of
// Virtual Machine Contributor (which includes Run Command: code execution on every VM of a group) and Storage Account
// Contributor (which can list the account keys). tests/infra checks each role grants precisely the operations the
// actions declare under its name, and docs/permissions.md lists them. Defined at the subscription, assignable only at
// the resource groups main.bicep assigns them at (rbac.bicep does the assigning).

targetScope = 'subscription'

@description('Part of each role name: role names are unique in a tenant, and each environment has its own roles')
param environmentName string

@description('Resource group ids the roles may be assigned at (the targets, the Network Watcher and capture groups)')
param assignableScopes array

var vmResponderActions = [
  'Microsoft.Compute/virtualMachines/read'
  'Microsoft.Compute/virtualMachines/powerOff/action'
  'Microsoft.Compute/virtualMachines/deallocate/action'
  'Microsoft.Compute/virtualMachines/start/action'
  'Microsoft.Compute/virtualMachines/extensions/read'
  'Microsoft.Compute/virtualMachines/extensions/write'
]

var networkResponderActions = [
  'Microsoft.Network/networkInterfaces/read'
  'Microsoft.Network/networkInterfaces/write'
  'Microsoft.Network/networkInterfaces/effectiveNetworkSecurityGroups/action'
  'Microsoft.Network/networkSecurityGroups/read'
  'Microsoft.Network/networkSecurityGroups/write'
  'Microsoft.Network/networkSecurityGroups/delete'
  'Microsoft.Network/networkSecurityGroups/join/action'
  'Microsoft.Network/networkSecurityGroups/securityRules/write'
  'Microsoft.Network/networkSecurityGroups/securityRules/delete'
  'Microsoft.Network/virtualNetworks/subnets/read'
  'Microsoft.Network/virtualNetworks/subnets/join/action'
  'Microsoft.Network/publicIPAddresses/read'
  'Microsoft.Network/publicIPAddresses/join/action'
  'Microsoft.Network/applicationSecurityGroups/joinIpConfiguration/action'
  'Microsoft.Network/loadBalancers/backendAddressPools/join/action'
  'Microsoft.Network/loadBalancers/inboundNatRules/join/action'
  'Microsoft.Network/networkWatchers/read'
  'Microsoft.Network/networkWatchers/packetCaptures/read'
  'Microsoft.Network/networkWatchers/packetCaptures/write'
  'Microsoft.Network/networkWatchers/packetCaptures/queryStatus/action'
  'Microsoft.Network/networkWatchers/packetCaptures/stop/action'
]

var captureStorageActions = [
  'Microsoft.Storage/storageAccounts/read'
  'Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action'
]

var defenderResponderActions = [
  'Microsoft.Security/locations/alerts/read'
  'Microsoft.Security/locations/alerts/resolve/action'
  'Microsoft.Security/locations/alerts/dismiss/action'
  'Microsoft.Security/locations/alerts/activate/action'
]

var storageResponderActions = [
  'Microsoft.Storage/storageAccounts/read'
  'Microsoft.Storage/storageAccounts/write'
]

resource vmResponder 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'Riposte VM Responder')
  properties: {
    roleName: 'Riposte VM Responder (${environmentName})'
    description: 'Riposte: read, power off, deallocate and start VMs, and let Network Watcher add its extension. No Run Command.'
    type: 'CustomRole'
    permissions: [
      {
        actions: vmResponderActions
        notActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

resource networkResponder 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'Riposte Network Responder')
  properties: {
    roleName: 'Riposte Network Responder (${environmentName})'
    description: 'Riposte: isolate VMs behind an NSG, block IPs in NSGs, and run Network Watcher packet captures.'
    type: 'CustomRole'
    permissions: [
      {
        actions: networkResponderActions
        notActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

resource captureStorage 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'Riposte Capture Storage')
  properties: {
    roleName: 'Riposte Capture Storage (${environmentName})'
    description: 'Riposte: packet capture files written with a user delegation SAS. No account keys.'
    type: 'CustomRole'
    permissions: [
      {
        actions: captureStorageActions
        notActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

resource defenderResponder 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'Riposte Defender Responder')
  properties: {
    roleName: 'Riposte Defender Responder (${environmentName})'
    description: 'Riposte: read Defender for Cloud alerts and set their state (resolve, dismiss, activate). Nothing else.'
    type: 'CustomRole'
    permissions: [
      {
        actions: defenderResponderActions
        notActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

resource storageResponder 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'Riposte Storage Responder')
  properties: {
    roleName: 'Riposte Storage Responder (${environmentName})'
    description: 'Riposte: read storage accounts and change their settings (public access, shared key, firewall). No keys.'
    type: 'CustomRole'
    permissions: [
      {
        actions: storageResponderActions
        notActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

// The role definition ids (GUIDs), as rbac.bicep takes them.
output vmResponderRoleId string = vmResponder.name
output networkResponderRoleId string = networkResponder.name
output captureStorageRoleId string = captureStorage.name
output defenderResponderRoleId string = defenderResponder.name
output storageResponderRoleId string = storageResponder.name
