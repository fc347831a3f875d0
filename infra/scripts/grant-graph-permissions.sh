#!/usr/bin/env bash
# Grants Riposte's managed identity the Microsoft Graph application permissions its actions need, for a deployment
# made with useGraphExtension=false (the deploying account could not grant them). Run it as a Privileged Role
# Administrator or Global Administrator, in Azure Cloud Shell or anywhere with the Azure CLI and jq.
#
#   infra/scripts/grant-graph-permissions.sh PRINCIPAL_OBJECT_ID          # grant what is missing
#   infra/scripts/grant-graph-permissions.sh --check PRINCIPAL_OBJECT_ID  # list what is missing; exit 1 if any
#
# PRINCIPAL_OBJECT_ID is the managed identity's object id: the RIPOSTE_IDENTITY_PRINCIPAL_ID output of the
# deployment (`azd env get-value RIPOSTE_IDENTITY_PRINCIPAL_ID`). The permissions come from
# infra/graph-permissions.json, generated from the action registry (docs/permissions.md explains each one).
# Granting is idempotent: permissions already held are left alone. Set GRAPH_URL for a sovereign cloud.
set -euo pipefail

GRAPH_URL="${GRAPH_URL:-https://graph.microsoft.com}"
SECURITY_INSIGHTS_APP_ID="98785600-1bb7-4fb9-b9fa-19afe2c8a360" # Azure Security Insights (Microsoft Sentinel)
GRANTS_FILE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/graph-permissions.json"

usage() {
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
}

check_only=false
if [[ "${1:-}" == "--check" ]]; then
    check_only=true
    shift
fi
principal_id="${1:-}"
[[ "$principal_id" =~ ^[0-9a-fA-F-]{36}$ ]] || usage
for tool in az jq; do
    command -v "$tool" >/dev/null || { echo "needs $tool on PATH" >&2; exit 2; }
done

resource_app_id="$(jq -r '.resourceAppId' "$GRANTS_FILE")"
graph_sp_id="$(az ad sp show --id "$resource_app_id" --query id --output tsv)"
held="$(az rest --method GET \
    --url "$GRAPH_URL/v1.0/servicePrincipals/$principal_id/appRoleAssignments?\$select=appRoleId,resourceId" \
    --query "value[?resourceId=='$graph_sp_id'].appRoleId" --output tsv)"

missing=0
while IFS=$'\t' read -r app_role_id permission; do
    if grep -qix "$app_role_id" <<<"$held"; then
        echo "held     $permission"
        continue
    fi
    missing=$((missing + 1))
    if $check_only; then
        echo "MISSING  $permission ($app_role_id)"
        continue
    fi
    body="$(jq -n --arg p "$principal_id" --arg r "$graph_sp_id" --arg a "$app_role_id" \
        '{principalId: $p, resourceId: $r, appRoleId: $a}')"
    az rest --method POST --url "$GRAPH_URL/v1.0/servicePrincipals/$graph_sp_id/appRoleAssignedTo" \
        --headers "Content-Type=application/json" --body "$body" --output none
    echo "granted  $permission"
done < <(jq -r '.grants[] | [.appRoleId, .permission] | @tsv' "$GRANTS_FILE")

security_insights_id="$(az ad sp show --id "$SECURITY_INSIGHTS_APP_ID" --query id --output tsv 2>/dev/null || true)"
echo
echo "Azure Security Insights service principal (azureSecurityInsightsPrincipalId): ${security_insights_id:-not found}"

if $check_only && ((missing > 0)); then
    echo "$missing permission(s) missing" >&2
    exit 1
fi
