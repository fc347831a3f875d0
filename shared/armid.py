"""Azure Resource Manager ids, taken apart: the one parser for every ARM id in `shared`.

Pure (no SDK, nothing but the standard library), so the bottom layer (intake, settings) may use it as well as the
Azure adapters above it. ARM ids are case-insensitive: compare them with `ArmId.same`, `ArmId.key` or `same_id`."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_SEGMENT = re.compile(r"^[^/\s]+$")


@dataclass(frozen=True)
class ArmId:
    """/subscriptions/s/resourceGroups/g/providers/Namespace/type/name[/childType/childName...], or an extension
    resource: <the id of the resource it extends>/providers/Namespace/type/name (a Sentinel incident on its
    workspace), whose `scope` is the extended resource's id."""

    subscription: str
    resource_group: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]
    scope: ArmId | None = None

    @classmethod
    def parse(cls, value: str, expected_type: str | None = None) -> ArmId:
        """Raises ValueError naming the value when it is not a resource id (or not one of `expected_type`)."""
        parts = value.strip().strip("/").split("/")
        if (
            len(parts) < 8
            or len(parts) % 2
            or parts[0].lower() != "subscriptions"
            or parts[2].lower() != "resourcegroups"
            or parts[4].lower() != "providers"
            or not all(_SEGMENT.match(p) and p not in (".", "..") for p in parts)
        ):
            raise ValueError(f"{value!r} is not an Azure resource id")
        parsed = cls(parts[1], parts[3], parts[5], (), ())
        for segment, name in zip(parts[6::2], parts[7::2], strict=True):
            if segment.lower() != "providers":
                parsed = replace(parsed, types=(*parsed.types, segment), names=(*parsed.names, name))
            elif parsed.types:  # an extension resource starts here; what came before is the resource it extends
                parsed = cls(parsed.subscription, parsed.resource_group, name, (), (), scope=parsed)
            else:
                raise ValueError(f"{value!r} is not an Azure resource id")
        if not parsed.types:
            raise ValueError(f"{value!r} is not an Azure resource id")
        if expected_type is not None and parsed.type.lower() != expected_type.lower():
            raise ValueError(f"{value!r} is a {parsed.type}, not a {expected_type}")
        return parsed

    @property
    def type(self) -> str:
        return "/".join((self.namespace, *self.types))

    @property
    def name(self) -> str:
        return self.names[-1]

    @property
    def parent(self) -> ArmId:
        if len(self.names) < 2:
            raise ValueError(f"{self} has no parent resource")
        return replace(self, types=self.types[:-1], names=self.names[:-1])

    @property
    def key(self) -> str:
        return str(self).lower()

    def same(self, other: str | ArmId | None) -> bool:
        return other is not None and str(other).strip().rstrip("/").lower() == self.key

    def child(self, child_type: str, child_name: str) -> ArmId:
        return replace(self, types=(*self.types, child_type), names=(*self.names, child_name))

    def within(self, resource_type: str) -> ArmId | None:
        """This resource, or the parent or extended resource it belongs to, that is a `resource_type`; else None."""
        node: ArmId | None = self
        while node is not None:
            for depth in range(len(node.types), 0, -1):
                candidate = replace(node, types=node.types[:depth], names=node.names[:depth])
                if candidate.type.lower() == resource_type.lower():
                    return candidate
            node = node.scope
        return None

    def __str__(self) -> str:
        if self.scope is not None:
            path = f"{self.scope}/providers/{self.namespace}"
        else:
            path = f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/{self.namespace}"
        for resource_type, name in zip(self.types, self.names, strict=True):
            path += f"/{resource_type}/{name}"
        return path


def resource_id(subscription: str, group: str, resource_type: str, name: str) -> ArmId:
    namespace, _, type_name = resource_type.partition("/")
    return ArmId(subscription, group, namespace, (type_name,), (name,))


def same_id(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


def name_of(value: str) -> str:
    """The last segment of any id: a resource's, a resource group's or a subscription's name, or a bare name as is
    (an analytic rule named by its ARM id or by its id alone)."""
    return value.strip().strip("/").rsplit("/", 1)[-1]


def subscription_of(value: str) -> str | None:
    """The subscription of any id under /subscriptions/<id> (resource groups and subscription-level resources
    included), or None."""
    parts = value.strip().strip("/").split("/")
    if len(parts) < 2 or parts[0].lower() != "subscriptions" or not _SEGMENT.match(parts[1]):
        return None
    return parts[1]
