"""Getting mail out: upstream transports, the durable delivery queue and DSNs."""

from __future__ import annotations

from leakguard.delivery.service import Delivery, DeliverySettings, Outcome
from leakguard.delivery.transport import (
    MemoryTransport,
    Reply,
    SendOptions,
    SendResult,
    UpstreamError,
    UpstreamTransport,
)

__all__ = [
    "Delivery",
    "DeliverySettings",
    "MemoryTransport",
    "Outcome",
    "Reply",
    "SendOptions",
    "SendResult",
    "UpstreamError",
    "UpstreamTransport",
]
