"""Which network addresses a fetch may reach: public ones only, unless told otherwise.

A URL job names any host on the internet, so a worker that fetched blindly could be
pointed at its own machine, its network, or a cloud metadata service (SSRF). The rule
is checked on every address a host resolves to, and on the IPv4 address hidden inside
IPv6 forms that carry one (IPv4-mapped, 6to4, Teredo, NAT64).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterator

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Maps a host name and port to the addresses it resolves to; tests replace it.
Resolver = Callable[[str, int], Awaitable[list[str]]]

_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_FLAGS = (
    ("is_loopback", "loopback"),
    ("is_unspecified", "unspecified"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_private", "private"),
    ("is_reserved", "reserved"),
    ("is_site_local", "site-local"),
)


async def resolve(host: str, port: int) -> list[str]:
    """The addresses of `host`, in the system resolver's order (run off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_literal(host: str) -> IPAddress | None:
    """The address when `host` is an IP literal, else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def refusal(address: IPAddress) -> str | None:
    """Why `address` is no place to fetch from ("loopback", "private", ...), or None."""
    for candidate in (*_embedded(address), address):
        for flag, reason in _FLAGS:
            if getattr(candidate, flag, False):
                return reason
        if isinstance(candidate, ipaddress.IPv4Address) and candidate in _SHARED:
            return "shared (carrier-grade NAT)"
        if not candidate.is_global:
            return "non-public"
    return None


def _embedded(address: IPAddress) -> Iterator[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, which is where its packets really go."""
    if isinstance(address, ipaddress.IPv4Address):
        return
    if address.ipv4_mapped is not None:
        yield address.ipv4_mapped
    if address.sixtofour is not None:
        yield address.sixtofour
    if address.teredo is not None:
        yield from address.teredo  # (server, client)
    if address in _NAT64:
        yield ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
