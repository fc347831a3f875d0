// A Consumption Logic App that relays one source to Riposte: the Microsoft Sentinel incident trigger (run by an
// automation rule, modules/sentinel-automation.bicep), the Microsoft Sentinel entity trigger (run by an analyst from
// an entity in the portal: "Run playbook"; one relay per entity kind) or the Defender for Cloud alert trigger (run by
// workflow automation, modules/defender-automation.bicep). It POSTs the trigger body unchanged to /api/incidents, whose
// intake reads both shapes, then follows the 202: it polls the run's Location until the run finishes, so the
// Logic App's run history shows each incident's outcome.
//
// The polling is written out (DisableAsyncPattern plus a loop) instead of relying on the HTTP action's built-in
// async pattern, because every poll must carry the function key header and the API's Location is relative.

@allowed([
  'sentinel'
  'sentinelEntity'
  'defender'
])
param source string

@description('For the entity relay: the entity kind its trigger is offered on in the portal (Account, Host, IP...)')
param entityType string = 'Account'
param name string
param location string
param tags object = {}

@description('The Function App (in this resource group) the relay posts to')
param functionAppName string

@description('How long the relay follows one run before giving up (ISO 8601); a run waiting for approval can take hours')
param followTimeout string = 'PT24H'

var sources = {
  sentinel: {
    api: 'azuresentinel'
    triggerName: 'Microsoft_Sentinel_incident'
    path: '/incident-creation'
    displayName: 'Riposte relay: Microsoft Sentinel (managed identity)'
  }
  sentinelEntity: {
    api: 'azuresentinel'
    triggerName: 'Microsoft_Sentinel_entity'
    path: '/entity/@{encodeURIComponent(\'${entityType}\')}'
    displayName: 'Riposte relay: Microsoft Sentinel entity (managed identity)'
  }
  defender: {
    api: 'ascalert'
    triggerName: 'Microsoft_Defender_for_Cloud_alert'
    path: '/Microsoft.Security/Alert/subscribe'
    displayName: 'Riposte relay: Microsoft Defender for Cloud alerts'
  }
}
var chosen = sources[source]
var connectionName = '${name}-${chosen.api}'
var managedApiId = subscriptionResourceId('Microsoft.Web/locations/managedApis', location, chosen.api)

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource host 'Microsoft.Web/sites/host@2024-04-01' existing = {
  parent: functionApp
  name: 'default'
}

resource connection 'Microsoft.Web/connections@2016-06-01' = {
  name: connectionName
  location: location
  tags: tags
  properties: {
    displayName: chosen.displayName
    customParameterValues: {}
    // The Sentinel connector signs in as the Logic App's managed identity; the Defender alert connector needs none.
    parameterValueType: chosen.api == 'azuresentinel' ? 'Alternative' : null
    api: {
      id: managedApiId
    }
  }
}

var sentinelConnection = {
  connectionId: connection.id
  connectionName: connection.name
  id: managedApiId
  connectionProperties: {
    authentication: {
      type: 'ManagedServiceIdentity'
    }
  }
}
var defenderConnection = {
  connectionId: connection.id
  connectionName: connection.name
  id: managedApiId
}

var keyHeader = {
  'Content-Type': 'application/json'
  'x-functions-key': '@{parameters(\'functionKey\')}'
}
var location202 = 'coalesce(outputs(\'Post_incident\')?[\'headers\']?[\'Location\'], \'\')'

resource workflow 'Microsoft.Logic/workflows@2019-05-01' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    state: 'Enabled'
    definition: {
      '$schema': 'https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/workflowdefinition.json#'
      contentVersion: '1.0.0.0'
      parameters: {
        '$connections': {
          type: 'Object'
          defaultValue: {}
        }
        riposteUrl: {
          type: 'String'
        }
        functionKey: {
          type: 'SecureString'
        }
      }
      triggers: {
        '${chosen.triggerName}': {
          type: 'ApiConnectionWebhook'
          inputs: {
            body: {
              callback_url: '@{listCallbackUrl()}'
            }
            host: {
              connection: {
                name: '@parameters(\'$connections\')[\'${chosen.api}\'][\'connectionId\']'
              }
            }
            path: chosen.path
          }
        }
      }
      actions: {
        Post_incident: {
          type: 'Http'
          runAfter: {}
          inputs: {
            method: 'POST'
            uri: '@{parameters(\'riposteUrl\')}/api/incidents'
            headers: keyHeader
            body: '@triggerBody()'
            retryPolicy: {
              type: 'exponential'
              count: 4
              interval: 'PT10S'
            }
          }
          operationOptions: 'DisableAsyncPattern'
          // The function key is in the inputs: keep it out of the run history.
          runtimeConfiguration: {
            secureData: {
              properties: [
                'inputs'
              ]
            }
          }
        }
        Initialize_run_status: {
          type: 'InitializeVariable'
          runAfter: {
            Post_incident: [
              'Succeeded'
            ]
          }
          inputs: {
            variables: [
              {
                name: 'runStatus'
                type: 'integer'
                value: '@outputs(\'Post_incident\')[\'statusCode\']'
              }
            ]
          }
        }
        Initialize_status_url: {
          type: 'InitializeVariable'
          runAfter: {
            Initialize_run_status: [
              'Succeeded'
            ]
          }
          inputs: {
            variables: [
              {
                name: 'statusUrl'
                type: 'string'
                value: '@{if(startsWith(${location202}, \'/\'), concat(parameters(\'riposteUrl\'), ${location202}), ${location202})}'
              }
            ]
          }
        }
        Initialize_retry_after: {
          type: 'InitializeVariable'
          runAfter: {
            Initialize_status_url: [
              'Succeeded'
            ]
          }
          inputs: {
            variables: [
              {
                name: 'retryAfterSeconds'
                type: 'integer'
                value: '@int(coalesce(outputs(\'Post_incident\')?[\'headers\']?[\'Retry-After\'], \'10\'))'
              }
            ]
          }
        }
        // 200 means a redelivery or no playbook matched: nothing to follow.
        If_accepted: {
          type: 'If'
          runAfter: {
            Initialize_retry_after: [
              'Succeeded'
            ]
          }
          expression: {
            and: [
              {
                equals: [
                  '@variables(\'runStatus\')'
                  202
                ]
              }
            ]
          }
          actions: {
            Follow_run: {
              type: 'Until'
              runAfter: {}
              expression: '@not(equals(variables(\'runStatus\'), 202))'
              limit: {
                count: 5000
                timeout: followTimeout
              }
              actions: {
                Wait_retry_after: {
                  type: 'Wait'
                  runAfter: {}
                  inputs: {
                    interval: {
                      count: '@variables(\'retryAfterSeconds\')'
                      unit: 'Second'
                    }
                  }
                }
                Get_run: {
                  type: 'Http'
                  runAfter: {
                    Wait_retry_after: [
                      'Succeeded'
                    ]
                  }
                  inputs: {
                    method: 'GET'
                    uri: '@variables(\'statusUrl\')'
                    headers: keyHeader
                  }
                  operationOptions: 'DisableAsyncPattern'
                  runtimeConfiguration: {
                    secureData: {
                      properties: [
                        'inputs'
                      ]
                    }
                  }
                }
                Set_run_status: {
                  type: 'SetVariable'
                  runAfter: {
                    Get_run: [
                      'Succeeded'
                    ]
                  }
                  inputs: {
                    name: 'runStatus'
                    value: '@outputs(\'Get_run\')[\'statusCode\']'
                  }
                }
                Set_retry_after: {
                  type: 'SetVariable'
                  runAfter: {
                    Set_run_status: [
                      'Succeeded'
                    ]
                  }
                  inputs: {
                    name: 'retryAfterSeconds'
                    value: '@int(coalesce(outputs(\'Get_run\')?[\'headers\']?[\'Retry-After\'], \'10\'))'
                  }
                }
              }
            }
          }
          else: {
            actions: {}
          }
        }
      }
      outputs: {}
    }
    parameters: {
      '$connections': {
        value: {
          '${chosen.api}': chosen.api == 'azuresentinel' ? sentinelConnection : defenderConnection
        }
      }
      riposteUrl: {
        value: 'https://${functionApp.properties.defaultHostName}'
      }
      // The host's default function key, read at deployment: rotate it, then run `azd provision` again
      // (docs/deploying.md, "Function keys").
      functionKey: {
        value: host.listKeys().functionKeys.default
      }
    }
  }
}

output id string = workflow.id
output name string = workflow.name
output triggerName string = chosen.triggerName
output principalId string = workflow.identity.principalId
