// The Logic Apps custom connector for Riposte: "Run playbook", "Get run", "Approve a step" and the other actions as
// designer cards instead of hand-written HTTP actions. Its Swagger 2.0 definition is generated from the same operation
// table and models as GET /api/openapi.json (python -m tools.gen_connector); the host is set here.

param name string
param location string
param tags object = {}

@description('The Function App\'s host name (<app>.azurewebsites.net) the connector calls')
param hostName string

var swagger = loadJsonContent('../connector/riposte.swagger.json')

resource connector 'Microsoft.Web/customApis@2016-06-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    displayName: 'Riposte'
    description: swagger.info.description
    apiType: 'Rest'
    backendService: {
      serviceUrl: 'https://${hostName}/api'
    }
    swagger: union(swagger, {
      host: hostName
    })
    // A connection holds the function key; the analyst actions also take an Entra ID token (their Authorization
    // parameter), which a Logic App gets for its managed identity once that identity is assigned a Riposte app role.
    connectionParameters: {
      api_key: {
        type: 'securestring'
        uiDefinition: {
          displayName: 'Function key'
          description: 'A function key of the Riposte Function App'
          tooltip: 'Azure portal: the Function App > App keys'
          constraints: {
            tabIndex: 2
            clearText: false
            required: 'true'
          }
        }
      }
    }
  }
}

output id string = connector.id
output name string = connector.name
