// The Function App on Flex Consumption (Linux, Python 3.11), running as Riposte's user-assigned managed identity
// with identity-based storage: no connection string or account key anywhere in its configuration.

param name string
param planName string
param location string
param tags object = {}

@description('Resource id and client id of the user-assigned managed identity the app runs as')
param identityId string
param identityClientId string

param storageAccountName string
param storageBlobEndpoint string
param deploymentContainerName string

param applicationInsightsConnectionString string

@description('The RIPOSTE_* settings, built in main.bicep (secure: it can hold the notification webhook URL)')
@secure()
param riposteSettings object

@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Turn on App Service Authentication (Easy Auth) with Entra ID in front of the app: set with RIPOSTE_TRUST_APP_SERVICE_AUTH=true, which Riposte refuses unless the platform reports it on (WEBSITE_AUTH_ENABLED)')
param appServiceAuthentication bool = false

@description('With appServiceAuthentication: client id of the API app registration analysts sign in to')
param authClientId string = ''

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// What the Functions host and the SDK clients need to find storage and telemetry with the managed identity.
var platformSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // DefaultAzureCredential (azure-identity) picks the user-assigned identity by this client id.
  AZURE_CLIENT_ID: identityClientId
  // The console's address, which approval requests on incidents link to (a link only opens the run's page).
  RIPOSTE_CONSOLE_URL: 'https://${site.properties.defaultHostName}/api/console/'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  #checkov:skip=CKV_AZURE_225:Zone redundancy on Flex Consumption is offered in some regions only and needs zone-redundant storage; Riposte's state survives an instance loss (queue redelivery and checkpoints), so a zonal outage delays runs rather than losing them.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  #checkov:skip=CKV_AZURE_17:Callers are Sentinel's relay Logic App, Defender for Cloud's relay and Event Grid, which authenticate with function keys and cannot present client certificates; analysts also need an Entra ID token (shared/api/auth.py).
  #checkov:skip=CKV_AZURE_88:Riposte keeps no files: its state is in Azure Tables and Queues.
  #checkov:skip=CKV_AZURE_221:Sentinel's and Defender's relay Logic Apps and Event Grid call the app from Azure's public address space; a private endpoint would need a VNet this template leaves out.
  #checkov:skip=CKV_AZURE_212:Flex Consumption scales out on demand (maximumInstanceCount); it has no fixed instance count to set a minimum on.
  #checkov:skip=CKV_AZURE_222:See CKV_AZURE_221: public network access is needed by the relays and Event Grid; every route still needs a function key.
  #checkov:skip=CKV_AZURE_213:App Service health check evicts instances from a fixed pool; Flex Consumption creates instances on demand. GET /api/health is there for an Application Insights availability test.
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov reads this app-settings resource as the site's web configuration; the skips below answer for the site.
  #checkov:skip=CKV_AZURE_13:Riposte authenticates callers itself: a function key on every route, and Entra ID tokens validated in shared/api/auth.py on analyst routes. trustAppServiceAuth=true also deploys App Service Authentication (authsettingsV2 below), letting unauthenticated requests through for the function keys of the machine routes.
  #checkov:skip=CKV_AZURE_63:Flex Consumption has no App Service file-system HTTP logs; requests are traced in Application Insights.
  #checkov:skip=CKV_AZURE_65:Flex Consumption has no App Service detailed error pages; failures and exceptions go to Application Insights.
  #checkov:skip=CKV_AZURE_66:Flex Consumption has no App Service failed-request tracing; failed requests are traced in Application Insights.
  #checkov:skip=CKV_AZURE_80:No .NET here: the app runs Python 3.11.
  #checkov:skip=CKV_AZURE_88:Riposte keeps no files: its state is in Azure Tables and Queues.
  #checkov:skip=CKV_AZURE_222:Public network access is needed by the relays and Event Grid (see the site); every route still needs a function key.
  parent: site
  name: 'appsettings'
  properties: union(platformSettings, riposteSettings)
}

// App Service Authentication, when Riposte is told to trust X-MS-CLIENT-PRINCIPAL (appservice-auth.bicep says how).
module authentication 'appservice-auth.bicep' = if (appServiceAuthentication) {
  name: 'riposte-appservice-auth'
  params: {
    siteName: site.name
    clientId: authClientId
  }
}

// Deployments go through Entra ID (azd, az functionapp deployment); no FTP or basic-auth publishing.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output id string = site.id
output url string = 'https://${site.properties.defaultHostName}'
