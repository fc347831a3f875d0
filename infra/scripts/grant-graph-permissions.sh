#!/usr/bin/env bash
# Grants Riposte's managed identity the Microsoft Graph application permissions its actions need (and the Defender for
# Endpoint ones, when the tenant has Defender for Endpoint), for a deployment
# made with useGraphExtension=false (the deploying account could not grant them). Run it as a Privileged Role
# Administrator or Global Administrator, in Azure Cloud Shell or anywhere with the Azure CLI and jq.
#
#   infra/scripts/grant-graph-permissions.sh PRINCIPAL_OBJECT_ID          # grant what is missing
#   infra/scripts/grant-graph-permissions.sh --check PRINCIPAL_OBJECT_ID  # list what is missing; exit 1 if any
#
# PRINCIPAL_OBJECT_ID is the managed identity's object id: the RIPOSTE_IDENTITY_PRINCIPAL_ID output of the
# deployment (`azd env get-value RIPOSTE_IDENTITY_PRINCIPAL_ID`). The permissions come from
# infra/graph-permissions.json and infra/mde-permissions.json, generated from the action registry
# (docs/permissions.md explains each one).
# Granting is idempotent: permissions already held are left alone. Set GRAPH_URL for a sovereign cloud.
set -euo pipefail

GRAPH_URL="${GRAPH_URL:-https://graph.microsoft.com}"
SECURITY_INSIGHTS_APP_ID="98785600-1bb7-4fb9-b9fa-19afe2c8a360" # Azure Security Insights (Microsoft Sentinel)
GRANTS_FILE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/graph-permissions.json"
MDE_GRANTS_FILE="$(dirname "$GRANTS_FILE")/mde-permissions.json"

usage() {
    sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
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

# grant_roles SP_ID: grants Riposte each app role of the resource service principal SP_ID read from stdin as
# "<app role id>\t<permission>" lines, skipping those it holds. Counts what is missing in $missing.
missing=0
grant_roles() {
    local resource_sp_id="$1" held app_role_id permission body
    held="$(az rest --method GET \
        --url "$GRAPH_URL/v1.0/servicePrincipals/$principal_id/appRoleAssignments?\$select=appRoleId,resourceId" \
        --query "value[?resourceId=='$resource_sp_id'].appRoleId" --output tsv)"
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
        body="$(jq -n --arg p "$principal_id" --arg r "$resource_sp_id" --arg a "$app_role_id" \
            '{principalId: $p, resourceId: $r, appRoleId: $a}')"
        az rest --method POST --url "$GRAPH_URL/v1.0/servicePrincipals/$resource_sp_id/appRoleAssignedTo" \
            --headers "Content-Type=application/json" --body "$body" --output none
        echo "granted  $permission"
    done
}

echo "Microsoft Graph"
resource_app_id="$(jq -r '.resourceAppId' "$GRANTS_FILE")"
graph_sp_id="$(az ad sp show --id "$resource_app_id" --query id --output tsv)"
grant_roles "$graph_sp_id" < <(jq -r '.grants[] | [.appRoleId, .permission] | @tsv' "$GRANTS_FILE")

# Defender for Endpoint (WindowsDefenderATP): its app role ids are not published, so each is looked up by value.
echo
echo "Microsoft Defender for Endpoint (WindowsDefenderATP)"
mde_app_id="$(jq -r '.resourceAppId' "$MDE_GRANTS_FILE")"
mde_sp_id="$(az ad sp show --id "$mde_app_id" --query id --output tsv 2>/dev/null || true)"
if [[ -z "$mde_sp_id" ]]; then
    echo "not in this tenant (no Defender for Endpoint): the mde.* actions cannot be granted"
else
    mde_roles="$(az ad sp show --id "$mde_app_id" \
        --query "appRoles[?contains(allowedMemberTypes, 'Application')].[id, value]" --output tsv)"
    grant_roles "$mde_sp_id" < <(jq -r '.grants[].permission' "$MDE_GRANTS_FILE" | while read -r permission; do
        awk -F '\t' -v p="$permission" '$2 == p { print $1 "\t" $2 }' <<<"$mde_roles"
    done)
fi

security_insights_id="$(az ad sp show --id "$SECURITY_INSIGHTS_APP_ID" --query id --output tsv 2>/dev/null || true)"
echo
echo "Azure Security Insights service principal (azureSecurityInsightsPrincipalId): ${security_insights_id:-not found}"

if $check_only && ((missing > 0)); then
    echo "$missing permission(s) missing" >&2
    exit 1
fi
