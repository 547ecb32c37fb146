"""The client's IP address of a request, behind reverse proxies or not.

``MEIYE_TRUSTED_PROXIES`` lists the proxies (IPs or CIDRs) whose ``X-Forwarded-For`` is believed. Only when the
direct peer (``REMOTE_ADDR``) is one of them is the header read, from the right: each proxy appends the address
it received the request from, so the right-most address that is not itself a trusted proxy is the client as
far as a trusted hop can vouch for it. Everything to the left of it was written by the client and could be
anything. With no trusted proxies (the default) the header is ignored and ``REMOTE_ADDR`` is the client.

Every place that records an IP (the Actor's ``ip``, hence the audit log, and the sign-in throttle) goes
through ``client_ip``.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"MEIYE_TRUSTED_PROXIES: {entry!r} is not an IP address or a network (CIDR)"
            ) from None
    return tuple(networks)


def trusted_proxies() -> tuple[Network, ...]:
    """The parsed ``MEIYE_TRUSTED_PROXIES`` (a list or a comma-separated string)."""
    raw = getattr(settings, "MEIYE_TRUSTED_PROXIES", ()) or ()
    entries = raw.split(",") if isinstance(raw, str) else list(raw)
    return _networks(tuple(e.strip() for e in entries if e and e.strip()))


def parse_ip(text: str) -> Address | None:
    """An address as written in REMOTE_ADDR or X-Forwarded-For ("203.0.113.7", "2001:db8::1", also
    "203.0.113.7:51234" and "[2001:db8::1]:443"); None if it is not one. IPv4-mapped IPv6 becomes IPv4."""
    text = text.strip().strip('"')
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address (see the module docstring); None when the request has no usable peer address."""
    peer = parse_ip(request.META.get("REMOTE_ADDR") or "")
    if peer is None:
        return None
    networks = trusted_proxies()
    if not networks or not _trusted(peer, networks):
        return str(peer)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR") or ""
    hops = [hop for hop in forwarded.split(",") if hop.strip()]
    nearest = peer  # the last address a trusted proxy vouches for
    for hop in reversed(hops):
        address = parse_ip(hop)
        if address is None:
            break  # garbage: nothing left of it can be believed
        if not _trusted(address, networks):
            return str(address)
        nearest = address
    return str(nearest)
