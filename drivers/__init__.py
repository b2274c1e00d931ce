"""PLC links: one interface, one backend per protocol, imported only when a line uses it."""
from .link import (Confirmation, LinkSettings, LinkStatus, PlcContact, PlcLink, ScanEvent, open_link)

__all__ = ["Confirmation", "LinkSettings", "LinkStatus", "PlcContact", "PlcLink", "ScanEvent", "open_link"]
