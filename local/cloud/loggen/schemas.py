"""The log tables: column names and Kusto types as in Microsoft's table reference, and the columns of a table whose
rows bring columns the reference subset lacks (or of a custom table nobody declared)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any


def _columns(spec: str) -> tuple[tuple[str, str], ...]:
    """'Name:type Name:type ...' -> ((name, kusto type), ...), so each schema reads like Microsoft's table reference."""
    return tuple((name, kind) for name, kind in (item.split(":") for item in spec.split()))


# Column names and Kusto types as in Microsoft's table reference (a subset of each table's columns, in its order
# where it matters). Every table also gets TenantId (the workspace id) and Type (the table name).
TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "SigninLogs": _columns(
        """TenantId:string SourceSystem:string TimeGenerated:datetime ResourceId:string OperationName:string
        OperationVersion:string Category:string ResultType:string ResultSignature:string ResultDescription:string
        DurationMs:long CorrelationId:string Resource:string ResourceGroup:string ResourceProvider:string
        Identity:string Level:string Location:string AlternateSignInName:string AppDisplayName:string AppId:string
        AuthenticationDetails:string AuthenticationRequirement:string AutonomousSystemNumber:string
        ClientAppUsed:string ConditionalAccessPolicies:dynamic ConditionalAccessStatus:string
        CreatedDateTime:datetime DeviceDetail:dynamic HomeTenantId:string Id:string IPAddress:string IsInteractive:bool
        IsRisky:bool LocationDetails:dynamic ResourceDisplayName:string ResourceIdentity:string ResourceTenantId:string
        RiskDetail:string RiskEventTypes:string RiskEventTypes_V2:string RiskLevelAggregated:string
        RiskLevelDuringSignIn:string RiskState:string Status:dynamic TokenIssuerType:string UserAgent:string
        UserDisplayName:string UserId:string UserPrincipalName:string UserType:string Type:string"""
    ),
    "AuditLogs": _columns(
        """TenantId:string SourceSystem:string TimeGenerated:datetime ResourceId:string OperationName:string
        OperationVersion:string Category:string ResultType:string ResultSignature:string ResultDescription:string
        DurationMs:long CorrelationId:string Resource:string ResourceGroup:string ResourceProvider:string
        Identity:string Level:string Location:string AdditionalDetails:dynamic Id:string InitiatedBy:dynamic
        LoggedByService:string Result:string ResultReason:string TargetResources:dynamic AADTenantId:string
        ActivityDisplayName:string ActivityDateTime:datetime AADOperationType:string Type:string"""
    ),
    "SecurityAlert": _columns(
        """TenantId:string TimeGenerated:datetime DisplayName:string AlertName:string AlertSeverity:string
        Description:string ProviderName:string VendorName:string VendorOriginalId:string SystemAlertId:string
        ResourceId:string SourceComputerId:string AlertType:string ConfidenceLevel:string ConfidenceScore:real
        IsIncident:bool StartTime:datetime EndTime:datetime ProcessingEndTime:datetime RemediationSteps:string
        ExtendedProperties:string Entities:string SourceSystem:string WorkspaceSubscriptionId:string
        WorkspaceResourceGroup:string ExtendedLinks:string ProductName:string ProductComponentName:string
        AlertLink:string Status:string CompromisedEntity:string Tactics:string Techniques:string
        SubTechniques:string Type:string"""
    ),
    "SecurityIncident": _columns(
        """TenantId:string TimeGenerated:datetime IncidentName:string Title:string Description:string Severity:string
        Status:string Classification:string ClassificationComment:string ClassificationReason:string Owner:dynamic
        ProviderName:string ProviderIncidentId:string FirstActivityTime:datetime LastActivityTime:datetime
        FirstModifiedTime:datetime LastModifiedTime:datetime CreatedTime:datetime ClosedTime:datetime
        IncidentNumber:int RelatedAnalyticRuleIds:dynamic AlertIds:dynamic BookmarkIds:dynamic Comments:dynamic
        Tasks:dynamic Labels:dynamic IncidentUrl:string AdditionalData:dynamic ModifiedBy:string SourceSystem:string
        Type:string"""
    ),
    "AzureActivity": _columns(
        """TenantId:string SourceSystem:string CallerIpAddress:string CategoryValue:string CorrelationId:string
        Authorization:string Authorization_d:dynamic Level:string OperationNameValue:string Properties:string
        Properties_d:dynamic Caller:string EventDataId:string EventSubmissionTimestamp:datetime HTTPRequest:string
        OperationId:string ResourceGroup:string ResourceProviderValue:string ActivityStatusValue:string
        ActivitySubstatusValue:string Hierarchy:string TimeGenerated:datetime SubscriptionId:string
        OperationName:string ActivityStatus:string ActivitySubstatus:string Category:string ResourceId:string
        ResourceProvider:string Resource:string _ResourceId:string _SubscriptionId:string Type:string"""
    ),
    "Heartbeat": _columns(
        """TenantId:string SourceSystem:string TimeGenerated:datetime ComputerIP:string Computer:string Category:string
        OSType:string OSName:string OSMajorVersion:string OSMinorVersion:string Version:string SCAgentChannel:string
        IsGatewayInstalled:bool RemoteIPLongitude:real RemoteIPLatitude:real RemoteIPCountry:string
        SubscriptionId:string ResourceGroup:string ResourceProvider:string Resource:string ResourceId:string
        ResourceType:string ComputerEnvironment:string Solutions:string VMUUID:string ComputerPrivateIPs:dynamic
        _ResourceId:string _SubscriptionId:string Type:string"""
    ),
    "SecurityEvent": _columns(
        """TenantId:string TimeGenerated:datetime SourceSystem:string Account:string AccountType:string Computer:string
        EventSourceName:string Channel:string Task:int Level:string EventID:int Activity:string
        AuthenticationPackageName:string FailureReason:string IpAddress:string IpPort:string LogonProcessName:string
        LogonType:int LogonTypeName:string Process:string ProcessName:string Status:string SubStatus:string
        SubjectAccount:string SubjectDomainName:string SubjectLogonId:string SubjectUserName:string
        SubjectUserSid:string TargetAccount:string TargetDomainName:string TargetLogonId:string TargetUserName:string
        TargetUserSid:string WorkstationName:string _ResourceId:string _SubscriptionId:string Type:string"""
    ),
    "CommonSecurityLog": _columns(
        """TenantId:string TimeGenerated:datetime DeviceVendor:string DeviceProduct:string DeviceVersion:string
        DeviceEventClassID:string Activity:string LogSeverity:string OriginalLogSeverity:string
        AdditionalExtensions:string DeviceAction:string SimplifiedDeviceAction:string ApplicationProtocol:string
        EventCount:int DestinationHostName:string DestinationIP:string DestinationPort:int
        DeviceInboundInterface:string DeviceOutboundInterface:string Protocol:string SourceIP:string SourcePort:int
        SentBytes:long ReceivedBytes:long CommunicationDirection:string Computer:string DeviceName:string
        DeviceAddress:string RemoteIP:string RemotePort:string MaliciousIP:string MaliciousIPCountry:string
        ThreatSeverity:int IndicatorThreatType:string ThreatDescription:string SourceSystem:string
        _ResourceId:string Type:string"""
    ),
    "Syslog": _columns(
        """TenantId:string SourceSystem:string TimeGenerated:datetime Computer:string EventTime:datetime
        Facility:string HostName:string SeverityLevel:string SyslogMessage:string ProcessID:int HostIP:string
        ProcessName:string CollectorHostName:string _ResourceId:string _SubscriptionId:string Type:string"""
    ),
    "ThreatIntelligenceIndicator": _columns(
        """TenantId:string TimeGenerated:datetime SourceSystem:string Action:string AzureTenantId:string
        ConfidenceScore:real Description:string ExpirationDateTime:datetime ExternalIndicatorId:string
        IndicatorId:string ThreatType:string Active:bool NetworkIP:string NetworkSourceIP:string DomainName:string
        Url:string TrafficLightProtocolLevel:string Tags:string FileHashType:string FileHashValue:string
        NetworkDestinationIP:string Type:string"""
    ),
    # The STIX table that replaces ThreatIntelligenceIndicator: one row per indicator version, the observable split
    # into ObservableKey ('ipv4-addr:value', 'domain-name:value', "file:hashes.'SHA-256'") and ObservableValue.
    "ThreatIntelIndicators": _columns(
        """TenantId:string TimeGenerated:datetime AzureTenantId:string WorkspaceId:string Id:string Source:string
        Created:datetime Modified:datetime ValidFrom:datetime ValidUntil:datetime IsActive:bool IsDeleted:bool
        Revoked:bool Confidence:int Pattern:string ObservableKey:string ObservableValue:string Tags:string
        Data:dynamic AdditionalFields:dynamic LastUpdateMethod:string SourceSystem:string Type:string"""
    ),
    # Watchlist items as Sentinel ingests them; _GetWatchlist (emulated as a stored function) reads the latest
    # version of each item of one alias.
    "Watchlist": _columns(
        """TenantId:string TimeGenerated:datetime AzureTenantId:string WatchlistId:string WatchlistName:string
        WatchlistAlias:string WatchlistCategory:string Source:string Provider:string Notes:string Tags:string
        SearchKey:string WatchlistItemId:string WatchlistItem:dynamic CreatedBy:dynamic UpdatedBy:dynamic
        CreatedTimeUTC:datetime LastUpdatedTimeUTC:datetime TimeToLive:datetime _DTItemId:string _DTItemType:string
        _DTItemStatus:string _DTTimestamp:datetime Type:string"""
    ),
    # Entra ID accounts as UEBA sees them (a row per refresh), and UEBA's scored activities.
    "IdentityInfo": _columns(
        """TenantId:string TimeGenerated:datetime AccountObjectId:string AccountUPN:string AccountName:string
        AccountDomain:string AccountDisplayName:string JobTitle:string Department:string Manager:string
        IsAccountEnabled:bool UserState:string AssignedRoles:dynamic GroupMembership:dynamic Tags:string
        BlastRadius:string InvestigationPriority:int InvestigationPriorityPercentile:int RiskLevel:string
        RiskState:string IsMFARegistered:bool LastSeenDate:datetime SourceSystem:string Type:string"""
    ),
    "BehaviorAnalytics": _columns(
        """TenantId:string TimeGenerated:datetime UserName:string UserPrincipalName:string ActivityType:string
        ActionType:string EventSource:string SourceIPAddress:string SourceIPLocation:string SourceDevice:string
        DestinationDevice:string InvestigationPriority:int ActivityInsights:dynamic UsersInsights:dynamic
        DevicesInsights:dynamic SourceRecordId:string SourceSystem:string Type:string"""
    ),
    # Traffic analytics over NSG flow logs: the classic custom table (suffixed columns, numbers as real) and the
    # table that replaces it for VNet flow logs.
    "AzureNetworkAnalytics_CL": _columns(
        """TenantId:string TimeGenerated:datetime SubType_s:string FASchemaVersion_s:string FlowStartTime_t:datetime
        FlowEndTime_t:datetime FlowType_s:string SrcIP_s:string DestIP_s:string VMIP_s:string DestPort_d:real
        L4Protocol_s:string FlowDirection_s:string FlowStatus_s:string NSGList_s:string NSGRule_s:string VM_s:string
        Subnet_s:string Region_s:string PublicIPs_s:string Country_s:string AllowedInFlows_d:real
        DeniedInFlows_d:real AllowedOutFlows_d:real DeniedOutFlows_d:real InboundBytes_d:real OutboundBytes_d:real
        Type:string"""
    ),
    "NTANetAnalytics": _columns(
        """TenantId:string TimeGenerated:datetime SubType:string FaSchemaVersion:string FlowStartTime:datetime
        FlowEndTime:datetime FlowType:string SrcIp:string DestIp:string DestPort:int L4Protocol:string
        FlowDirection:string FlowStatus:string AclGroup:string AclRule:string SrcVm:string DestVm:string
        SrcSubnet:string DestSubnet:string Country:string AllowedInFlows:long DeniedInFlows:long AllowedOutFlows:long
        DeniedOutFlows:long BytesSrcToDest:long BytesDestToSrc:long TargetResourceId:string Type:string"""
    ),
    # Columns exactly as the published query example (tests/fixtures/published/log_analytics/query_post_v1.json).
    "Usage": _columns(
        """TenantId:string Computer:string TimeGenerated:datetime SourceSystem:string StartTime:datetime
        EndTime:datetime ResourceUri:string LinkedResourceUri:string DataType:string Solution:string
        BatchesWithinSla:long BatchesOutsideSla:long BatchesCapped:long TotalBatches:long AvgLatencyInSeconds:real
        Quantity:real QuantityUnit:string IsBillable:bool MeterId:string LinkedMeterId:string Type:string"""
    ),
}

Row = dict[str, Any]
Tables = dict[str, list[Row]]


def columns_for(table: str, rows: Iterable[Row]) -> list[tuple[str, str]]:
    """The table's columns: the known schema (plus any extra column explicit rows bring), or inferred from values."""
    columns = list(TABLES.get(table, (("TenantId", "string"), ("TimeGenerated", "datetime"))))
    known = {name for name, _ in columns}
    extra: dict[str, str | None] = {}  # None: only nulls seen so far
    for row in rows:
        for name, value in row.items():
            if name in known:
                continue
            if extra.get(name) is None:
                extra[name] = None if value is None else _infer_type(value)
    columns.extend((name, kind or "string") for name, kind in extra.items())
    if "Type" not in known and "Type" not in extra:
        columns.append(("Type", "string"))
    return columns


def _infer_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "real"
    if isinstance(value, datetime | date):
        return "datetime"
    if isinstance(value, dict | list):
        return "dynamic"
    return "string"
