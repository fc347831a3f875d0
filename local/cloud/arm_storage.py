"""Microsoft.Storage account updates (PATCH), for the storage lockdown actions: allowBlobPublicAccess,
allowSharedKeyAccess and the firewall (networkAcls). Reading an account stays with local/cloud/arm_resources.py.

As the service does: PATCH is synchronous and answers 200 with the account; the properties given are set and the
others left alone; networkAcls is replaced as a whole (its ipRules are allow rules: a storage firewall has no deny
rule, an address is denied by not being allowed while defaultAction is Deny)."""

from __future__ import annotations

import ipaddress

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local.cloud.arm_resources import STORAGE_TYPE, ArmProvider, read_json, render
from local.cloud.errors import ArmError
from local.cloud.provider import route

ACCOUNT = "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{name}"
WRITABLE = {"allowBlobPublicAccess", "allowSharedKeyAccess", "networkAcls", "minimumTlsVersion", "publicNetworkAccess"}
MAX_IP_RULES = 400  # per storage account
PRIVATE = tuple(ipaddress.ip_network(p) for p in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"))


def _network_acls(value: object) -> dict[str, object]:
    if not isinstance(value, dict) or value.get("defaultAction") not in ("Allow", "Deny"):
        raise ArmError(400, "InvalidValuesForRequestParameters", "networkAcls.defaultAction must be Allow or Deny.")
    rules = value.get("ipRules") or []
    if not isinstance(rules, list) or len(rules) > MAX_IP_RULES:
        raise ArmError(400, "InvalidValuesForRequestParameters", f"At most {MAX_IP_RULES} ipRules.")
    for rule in rules:
        address = str(rule.get("value") or "") if isinstance(rule, dict) else ""
        try:
            network = ipaddress.ip_network(address, strict=True)
        except ValueError:
            raise ArmError(400, "InvalidValuesForRequestParameters", f"'{address}' is not a valid IP rule.") from None
        if network.version != 4 or any(network.overlaps(p) for p in PRIVATE):  # public IPv4 only
            raise ArmError(400, "InvalidValuesForRequestParameters", f"'{address}' must be a public IPv4 address.")
    return value


class StorageProvider(ArmProvider):
    namespace = "Microsoft.Storage"

    @route("PATCH", ACCOUNT)
    async def update_account(self, request: Request, subscription: str, group: str, name: str) -> Response:
        account = self.find(subscription, group, STORAGE_TYPE, name)
        body = await read_json(request)
        changes = body.get("properties") or {}
        unknown = set(changes) - WRITABLE
        if unknown:
            raise ArmError(400, "InvalidRequestPropertyValue", f"Property '{sorted(unknown)[0]}' cannot be updated.")
        if "networkAcls" in changes:
            changes["networkAcls"] = _network_acls(changes["networkAcls"])
        for key in ("allowBlobPublicAccess", "allowSharedKeyAccess"):
            if key in changes and not isinstance(changes[key], bool):
                raise ArmError(400, "InvalidRequestPropertyValue", f"'{key}' must be true or false.")
        account.setdefault("properties", {}).update(changes)
        return JSONResponse(render(account))
