"""Parse once: raw bytes -> immutable ``Message`` view (see ``leakguard.types.Message``)."""

from leakguard.message.addresses import make_address, parse_address_list
from leakguard.message.parse import parse_message

__all__ = ["make_address", "parse_address_list", "parse_message"]
