"""The emulated services: one provider class each, registered in this order (the order routes are matched in)."""

from __future__ import annotations

from local.cloud.admin import AdminProvider
from local.cloud.arm_authorization import AuthorizationProvider
from local.cloud.arm_compute import ComputeProvider
from local.cloud.arm_network import NetworkProvider
from local.cloud.arm_resources import ResourcesProvider
from local.cloud.arm_security import SecurityAlertsProvider, SecurityProvider
from local.cloud.arm_sentinel import SentinelProvider
from local.cloud.arm_storage import StorageProvider
from local.cloud.graph import GraphProvider
from local.cloud.graph_directory import GraphDirectoryProvider
from local.cloud.graph_signins import GraphSigninsProvider
from local.cloud.identity import IdentityProvider
from local.cloud.loganalytics import LogAnalyticsProvider
from local.cloud.mde import MdeProvider
from local.cloud.oidc import LoginProvider
from local.cloud.provider import Provider
from local.cloud.signin import SignInProvider
from local.cloud.sink import SinkProvider
from local.cloud.state import Cloud

PROVIDERS: tuple[type[Provider], ...] = (
    IdentityProvider,
    AdminProvider,
    GraphProvider,
    GraphSigninsProvider,
    GraphDirectoryProvider,
    ResourcesProvider,
    ComputeProvider,
    NetworkProvider,
    SentinelProvider,
    StorageProvider,
    SecurityProvider,
    SecurityAlertsProvider,
    AuthorizationProvider,
    LogAnalyticsProvider,
    MdeProvider,
    LoginProvider,
    SignInProvider,
    SinkProvider,
)


def providers(cloud: Cloud) -> list[Provider]:
    return [provider(cloud) for provider in PROVIDERS]
