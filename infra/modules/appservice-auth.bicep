// App Service Authentication (Easy Auth) in front of the Function App, deployed when Riposte is told to trust
// X-MS-CLIENT-PRINCIPAL (main.bicep: trustAppServiceAuth). The platform then validates Entra ID tokens itself, strips
// X-MS-CLIENT-PRINCIPAL from every incoming request and writes its own for a signed-in caller, and sets
// WEBSITE_AUTH_ENABLED=True, without which Riposte refuses to trust the header (shared/settings.py).
// Unauthenticated requests are let through: the relays and Event Grid call the machine routes with a function key and
// no token, and Riposte itself still refuses an analyst route without an identity holding the right app role.

@description('The Function App')
param siteName string

@description('Client id of the API app registration analysts sign in to (its tokens\' audience)')
param clientId string

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: siteName
}

resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov reads every sites/config resource as the site's web configuration; as for the app settings in
  // functionapp.bicep, the skips answer for the site, and CKV_AZURE_13 is this very resource.
  #checkov:skip=CKV_AZURE_13:This resource is App Service Authentication (authsettingsV2, platform.enabled true); the check looks for the older siteConfig form.
  #checkov:skip=CKV_AZURE_63:Flex Consumption has no App Service file-system HTTP logs; requests are traced in Application Insights.
  #checkov:skip=CKV_AZURE_65:Flex Consumption has no App Service detailed error pages; failures and exceptions go to Application Insights.
  #checkov:skip=CKV_AZURE_66:Flex Consumption has no App Service failed-request tracing; failed requests are traced in Application Insights.
  #checkov:skip=CKV_AZURE_80:No .NET here: the app runs Python 3.11.
  #checkov:skip=CKV_AZURE_88:Riposte keeps no files: its state is in Azure Tables and Queues.
  #checkov:skip=CKV_AZURE_222:Public network access is needed by the relays and Event Grid (see the site); every route still needs a function key.
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    httpSettings: {
      requireHttps: true
      forwardProxy: {
        convention: 'NoProxy' // X-Forwarded-* from callers are not believed
      }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            clientId
            'api://${clientId}'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false // bearer tokens only: no browser sessions to keep
      }
    }
  }
}
