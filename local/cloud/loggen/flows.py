"""The demo's traffic analytics: the attacker's address knocking on the web server's management ports (denied), and
later the web server calling out to it (allowed, with data leaving): the compromised VM talking to the attacker.
Everyday flows stand beside them: storefront visitors, the VM's DNS and updates. The classic table
(AzureNetworkAnalytics_CL) holds the older flows, the VNet flow log table (NTANetAnalytics) the recent ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from local.cloud.loggen.tenant import SPRAY_IP, Machine, web_machine
from local.cloud.loggen.writer import Writer

UPDATE_SERVER = "198.51.100.77"


@dataclass(frozen=True)
class Flow:
    when: datetime
    peer: str
    port: int
    outbound: bool
    allowed: bool
    flows: int
    bytes_out: int
    bytes_in: int
    malicious: bool = False


def flows(w: Writer) -> None:
    web = web_machine(w.tenant)
    if web is None:
        return
    for n in range(12):  # knocking on management ports, denied by the NSG, in the classic table
        port = (22, 3389, 22)[n % 3]
        _legacy(w, web, Flow(w.ago(20.0 - n * 1.1), SPRAY_IP, port, False, False, 4, 0, 240, True))
    for n in range(6):  # storefront visitors
        _legacy(w, web, Flow(w.ago(18.0 - n * 2.0), f"192.0.2.{60 + n}", 443, False, True, 3, 90_000, 4_000))
    _legacy(w, web, Flow(w.ago(10.0), UPDATE_SERVER, 443, True, True, 2, 3_000, 2_500_000))
    for n in range(5):  # the compromised VM calling out to the attacker, data leaving
        when = w.ago(1.8 - n * 0.3)
        _current(w, web, Flow(when, SPRAY_IP, 4444, True, True, 2, 4_800_000 + n * 1000, 52_000, True))
    _current(w, web, Flow(w.ago(0.5), UPDATE_SERVER, 443, True, True, 1, 1_500, 900_000))


def _legacy(w: Writer, vm: Machine, flow: Flow) -> None:
    local = vm.private_ips[0]
    w.add(
        "AzureNetworkAnalytics_CL",
        {
            "TimeGenerated": flow.when + timedelta(minutes=10),  # traffic analytics lands a processing interval later
            "SubType_s": "FlowLog",
            "FASchemaVersion_s": "2",
            "FlowStartTime_t": flow.when,
            "FlowEndTime_t": flow.when + timedelta(minutes=1),
            "FlowType_s": "MaliciousFlow" if flow.malicious else "ExternalPublic",
            "SrcIP_s": local if flow.outbound else flow.peer,
            "DestIP_s": flow.peer if flow.outbound else local,
            "VMIP_s": local,
            "DestPort_d": float(flow.port),
            "L4Protocol_s": "T",
            "FlowDirection_s": "O" if flow.outbound else "I",
            "FlowStatus_s": "A" if flow.allowed else "D",
            "NSGList_s": f"{vm.subscription_id}/{vm.resource_group}/nsg-{vm.name}",
            "NSGRule_s": "allow_https" if flow.allowed else "DefaultRule_DenyAllInBound",
            "VM_s": f"{vm.resource_group}/{vm.name}",
            "Subnet_s": f"{vm.resource_group}/vnet-prod/snet-web",
            "Region_s": vm.location,
            "PublicIPs_s": f"{flow.peer}|{flow.flows}|0|0|0|{flow.bytes_in}|{flow.bytes_out}",
            "Country_s": "RU" if flow.peer == SPRAY_IP else "",
            "AllowedInFlows_d": float(flow.flows if flow.allowed and not flow.outbound else 0),
            "DeniedInFlows_d": float(flow.flows if not flow.allowed and not flow.outbound else 0),
            "AllowedOutFlows_d": float(flow.flows if flow.allowed and flow.outbound else 0),
            "DeniedOutFlows_d": float(flow.flows if not flow.allowed and flow.outbound else 0),
            "InboundBytes_d": float(flow.bytes_in),
            "OutboundBytes_d": float(flow.bytes_out),
        },
    )


def _current(w: Writer, vm: Machine, flow: Flow) -> None:
    local_vm = f"{vm.resource_group}/{vm.name}"
    w.add(
        "NTANetAnalytics",
        {
            "TimeGenerated": flow.when + timedelta(minutes=10),
            "SubType": "FlowLog",
            "FaSchemaVersion": "3",
            "FlowStartTime": flow.when,
            "FlowEndTime": flow.when + timedelta(minutes=1),
            "FlowType": "MaliciousFlow" if flow.malicious else "ExternalPublic",
            "SrcIp": vm.private_ips[0] if flow.outbound else flow.peer,
            "DestIp": flow.peer if flow.outbound else vm.private_ips[0],
            "DestPort": flow.port,
            "L4Protocol": "T",
            "FlowDirection": "Outbound" if flow.outbound else "Inbound",
            "FlowStatus": "Allowed" if flow.allowed else "Denied",
            "AclGroup": f"nsg-{vm.name}",
            "AclRule": "AllowInternetOutBound" if flow.allowed else "DenyAllInBound",
            "SrcVm": local_vm if flow.outbound else "",
            "DestVm": "" if flow.outbound else local_vm,
            "SrcSubnet": "",
            "DestSubnet": "",
            "Country": "RU" if flow.peer == SPRAY_IP else "",
            "AllowedInFlows": flow.flows if flow.allowed and not flow.outbound else 0,
            "DeniedInFlows": flow.flows if not flow.allowed and not flow.outbound else 0,
            "AllowedOutFlows": flow.flows if flow.allowed and flow.outbound else 0,
            "DeniedOutFlows": flow.flows if not flow.allowed and flow.outbound else 0,
            "BytesSrcToDest": flow.bytes_out if flow.outbound else flow.bytes_in,
            "BytesDestToSrc": flow.bytes_in if flow.outbound else flow.bytes_out,
            "TargetResourceId": vm.resource_id,
        },
    )
