"""Which addresses the web renderer may reach: public unicast only, checked on resolved addresses.

``AddressPolicy.resolve`` resolves a host itself (numeric spellings such as 2130706433 or 0x7f.1
are read as addresses, the way browsers read them, never sent to DNS), checks every address the
name has, and returns the one to connect to, so the caller connects to exactly what was checked.
Loopback, private, link-local, multicast, reserved and unspecified addresses are refused, also
when embedded in IPv6 (IPv4-mapped, 6to4, Teredo, NAT64), unless the exact (ip, port) is allowed.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import socket
from typing import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Blocked(Exception):
    """A connection the policy refuses: its host is, or resolves to, an address that is not public."""

    reason = "url_blocked"

    def __init__(self, detail: str):
        super().__init__(f"{self.reason}: {detail}")
        self.detail = detail


class Unreachable(Exception):
    """A host that does not resolve (or a server that does not answer): a network error, not a block."""

    reason = "network_error"

    def __init__(self, detail: str):
        super().__init__(f"{self.reason}: {detail}")
        self.detail = detail


# Our own tables of what is not globally routable unicast, on top of ``is_global``: its tables
# change between Python patch releases (3.11.7 calls 224.0.0.1 and ff02::1 global), the guard's must not.
_V4_NOT_PUBLIC = tuple(ipaddress.IPv4Network(n) for n in (
    "0.0.0.0/8",  # "this network", unspecified
    "10.0.0.0/8",  # private
    "100.64.0.0/10",  # carrier-grade NAT
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local, cloud metadata
    "172.16.0.0/12",  # private
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",  # documentation
    "192.88.99.0/24",  # 6to4 relay anycast
    "192.168.0.0/16",  # private
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # documentation
    "203.0.113.0/24",  # documentation
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, limited broadcast
))
# Only 2000::/3 is allocated as global unicast; within it, these are not routable either.
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_V6_NOT_PUBLIC = tuple(ipaddress.IPv6Network(n) for n in (
    "2001::/23",  # IETF protocol assignments (Teredo, 2001::/32, is unwrapped before this test)
    "2001:db8::/32",  # documentation
    "3fff::/20",  # documentation
))
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_public(address: IPAddress | str) -> bool:
    """True only for a globally routable unicast address, and for IPv6 forms whose embedded IPv4 is one.

    IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::a.b.c.d), 6to4 (2002:aabb:ccdd::) and Teredo
    (server and client) addresses reach the IPv4 address inside them, so that address decides.
    """
    if isinstance(address, str):
        address = ipaddress.ip_address(address)
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded(address)
        if embedded:
            return all(is_public(inner) for inner in embedded)
        if address not in _V6_GLOBAL_UNICAST or any(address in net for net in _V6_NOT_PUBLIC):
            return False
    elif any(address in net for net in _V4_NOT_PUBLIC):
        return False
    return address.is_global and not (
        address.is_multicast or address.is_private or address.is_reserved or address.is_loopback
        or address.is_link_local or address.is_unspecified)


def _embedded(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries traffic to (mapped, NAT64, Teredo, 6to4), or []."""
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in _NAT64:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address.teredo is not None:
        return list(address.teredo)
    if address.sixtofour is not None:
        return [address.sixtofour]
    return []


def _why(address: IPAddress) -> str:
    """Why an address is not public, in words, for a Blocked detail."""
    if isinstance(address, ipaddress.IPv6Address) and _embedded(address):
        return "embeds " + ", ".join(f"{inner} ({_why(inner)})" for inner in _embedded(address))
    for word in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{word}"):
            return word.replace("_", "-")
    return "not globally routable" if not is_public(address) else "public"


_HOST_PORT = re.compile(r"\[([^\[\]]+)\]:(\d{1,5})|([^:\[\]]+):(\d{1,5})")
_HOST_NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")


def _valid_port(port) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be an integer from 1 to 65535, got {port!r}")
    return port


def split_host_port(text: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' as (host, port); ValueError for anything else."""
    match = _HOST_PORT.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"expected 'host:port' or '[ipv6]:port', got {text!r}")
    host = match.group(1) or match.group(3)
    return host, _valid_port(int(match.group(2) or match.group(4)))


def _addresses(host: str) -> list[IPAddress]:
    """Every address ``host`` names: a literal in any notation a browser or libc accepts, or DNS."""
    if host.startswith("[") and host.endswith("]"):
        try:
            return [ipaddress.IPv6Address(host[1:-1])]
        except ValueError:
            raise Blocked(f"{host!r} is not an IPv6 address") from None
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    if not host.isascii() or len(host) > 253 or not _HOST_NAME.fullmatch(host):
        raise Blocked(f"{host[:100]!r} is not a valid host name")
    # A name whose last label is a number is an IPv4 address in some notation ("2130706433",
    # "0177.0.0.1", "0x7f.1", "127.1"), as browsers parse it, or nothing; never a DNS question.
    if _NUMERIC_LABEL.fullmatch(host.rstrip(".").rsplit(".", 1)[-1]):
        try:
            return [ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))]
        except OSError:
            raise Blocked(f"{host!r} is not a valid IPv4 address") from None
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_UNSPEC, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except (UnicodeError, ValueError):
        raise Blocked(f"{host[:100]!r} is not a valid host name") from None
    except OSError as error:
        raise Unreachable(f"{host} does not resolve: {error}") from None
    found = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not found:
        raise Unreachable(f"{host} resolves to no address")
    return found


def _is_name(host: str) -> bool:
    """True for a DNS name, False for an address literal in any notation (so details can say which)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return False
    except ValueError:
        return not _NUMERIC_LABEL.fullmatch(host.rstrip(".").rsplit(".", 1)[-1])


@dataclasses.dataclass(frozen=True)
class AddressPolicy:
    """Which (address, port) a connection may reach: public addresses, and the pairs in ``allow``.

    ``public=False`` (offline) reaches the pairs in ``allow`` only, and looks no name up: a
    renderer of a local site or a folder of HTML files then sends nothing beyond them, not even
    a DNS query for the calls Chromium makes on its own (autofill, updates).
    """

    allow: frozenset[tuple[str, int]] = frozenset()
    public: bool = True

    def __post_init__(self):
        pairs = set()
        for item in self.allow:
            try:
                ip, port = item
                pairs.add((str(ipaddress.ip_address(ip)), _valid_port(port)))
            except (TypeError, ValueError):
                raise ValueError(f"allow holds (ip, port) pairs, got {item!r}") from None
        object.__setattr__(self, "allow", frozenset(pairs))

    @classmethod
    def from_strings(cls, items: Iterable[str], public: bool = True) -> AddressPolicy:
        """A policy allowing each "host:port" / "[v6]:port"; a name allows every address it has now."""
        if isinstance(items, str):
            raise ValueError("from_strings takes a list of 'host:port' strings, not one string")
        pairs = set()
        for item in items:
            host, port = split_host_port(item)
            try:
                addresses = _addresses(host)
            except (Blocked, Unreachable) as error:
                raise ValueError(f"cannot allow {item!r}: {error.detail}") from None
            pairs.update((str(address), port) for address in addresses)
        return cls(frozenset(pairs), public)

    def resolve(self, host: str, port: int) -> tuple[str, int]:
        """The (ip, port) to connect to for ``host``; Blocked if any address it has is not allowed.

        A name that resolves to a public and a private address is blocked: which one a connection
        would get is the resolver's choice, and an attacker's DNS makes it.
        """
        try:
            port = _valid_port(port)
        except ValueError as error:
            raise Blocked(str(error)) from None
        if not isinstance(host, str) or not host:
            raise Blocked(f"{host!r} is not a host")
        if not self.public and _is_name(host):
            raise Blocked(f"{host[:100]} is a name, and offline no name is looked up")
        addresses = _addresses(host)
        if not self.public:
            for address in addresses:
                if (str(address), port) not in self.allow:
                    raise Blocked(f"{address} port {port} is not allowed, and offline nothing else is")
            return str(addresses[0]), port
        for address in addresses:
            if (str(address), port) not in self.allow and not is_public(address):
                if len(addresses) > 1 or _is_name(host):
                    named = f"{host[:100]} resolves to {address}"
                else:
                    named = str(address) if host.strip("[]") == str(address) else f"{host} is {address}"
                raise Blocked(f"{named} ({_why(address)}), which is neither public nor allowed on port {port}")
        return str(addresses[0]), port
