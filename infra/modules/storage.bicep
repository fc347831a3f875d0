// Riposte's durable state (shared/azure/storage.py: runs, ledger and dedup tables, the work queue and its poison
// queue) and the Flex Consumption deployment package. Entra ID only: shared keys are off, so every caller, the
// Functions host included, authenticates with a managed identity and holds a data role (modules/rbac.bicep).

param name string
param location string
param tags object = {}
param deploymentContainerName string
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_ZRS'

// The names shared/azure/storage.py uses (tests/infra checks they match). The app also creates them if missing.
var tableNames = [
  'RiposteRuns'
  'RiposteDedup'
  'RiposteBudget'
]
var queueNames = [
  'riposte-runs'
  'riposte-runs-poison'
]

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  #checkov:skip=CKV_AZURE_35:The Flex Consumption app reaches this account over its public endpoint (no VNet integration in this template); shared keys are disabled, so every request needs an Entra ID token and a data role.
  #checkov:skip=CKV_AZURE_33:Queue classic logging needs shared-key-era Storage Analytics; this account has shared keys off. Use Azure Monitor diagnostic settings on the account if queue logs are required.
  #checkov:skip=CKV2_AZURE_1:Customer-managed keys need a Key Vault and key rotation process that a deployment of this size does not carry; data is encrypted at rest with Microsoft-managed keys.
  #checkov:skip=CKV_AZURE_59:See CKV_AZURE_35: the public endpoint stays reachable for the Flex Consumption app; anonymous blob access and shared keys are both disabled.
  #checkov:skip=CKV_AZURE_206:Zone-redundant (ZRS) by default: three copies across availability zones. Geo-replication (skuName Standard_GZRS) is a parameter away where a regional outage must not pause Riposte.
  #checkov:skip=CKV2_AZURE_33:A private endpoint needs the VNet integration this template leaves out (see CKV_AZURE_35).
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: { enabled: true }
        file: { enabled: true }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for table in tableNames: {
    parent: tableService
    name: table
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queue in queueNames: {
    parent: queueService
    name: queue
  }
]

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
