"""Where the service may fetch from: http(s) only, public addresses, and what the operator allows.

Every URL a user gives (``URL``, ``SSA``, ``DATALINK``, ``LABELS``, an access
URL in an uploaded table, a TAP ``UPLOAD`` by URL) is fetched by the service,
from inside the network it runs in. Without a fence that lets anyone read
cloud metadata (169.254.169.254), an intranet wiki or a database's HTTP port
through the service (server-side request forgery). The fence:

* scheme ``http`` or ``https`` only (no ``file:``, ``ftp:``, ``gopher:`` ...);
* the address the connection goes to -- after DNS, at every redirect hop --
  must be global unicast. Loopback, private (RFC 1918, ULA), link-local,
  carrier-grade NAT, multicast, unspecified and reserved addresses are refused,
  except:
* the service's own public origin (``ALVO_BASE_URL``), so a job can ingest
  from the service's own SSA/DataLink;
* loopback, when the service itself listens only on loopback: the anonymous
  desktop service, where the user and the service share the machine anyway;
* the networks (CIDR) and host names the operator lists in ``ALVO_FETCH_ALLOW``.

The check happens where the socket is opened (:class:`ConfinedBackend`, an
httpcore network backend): the host is resolved once, every address it
resolves to must pass, and the connection goes to that checked address, so a
name that resolves differently a second later (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpcore

from service.reasons import AlvoError, Reason

if TYPE_CHECKING:
    from service.settings import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")
_HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")


def refused(detail: str) -> AlvoError:
    return AlvoError(Reason.FETCH_REFUSED, detail)


def kind_of(address: Address) -> str:
    """``"public"`` or why the address is not (loopback, private, link-local ...)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"
    return "public"


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class Confinement:
    """The fence of every fetch; picklable, so it travels to Dask workers with the policy.

    ``loopback``: whether loopback addresses may be fetched (the desktop case).
    ``networks``: CIDRs the operator allows although not public.
    ``hosts``: host names the operator allows, whatever they resolve to.
    ``origins``: ``(host, port)`` of the service itself, always allowed.
    """

    loopback: bool = True
    networks: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    origins: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Confinement:
        networks, hosts = parse_allow(settings.fetch_allow)
        origin = urlsplit(settings.public_url)
        own = (
            ((origin.hostname or "").lower(), origin.port or DEFAULT_PORTS.get(origin.scheme, 80)),
        )
        return cls(
            loopback=binds_loopback(settings.host), networks=networks, hosts=hosts, origins=own
        )

    def check_url(self, url: str) -> None:
        """Refuse what can be refused before any network traffic: scheme, literal address."""
        try:
            parts = urlsplit(url)
            port = parts.port
            host = (parts.hostname or "").lower()
        except ValueError:
            raise refused(f"{url!r} is not a URL") from None
        if parts.scheme.lower() not in SCHEMES:
            raise refused(f"{url!r}: only http:// and https:// URLs are fetched")
        if not host:
            raise refused(f"{url!r} names no host")
        address = _literal(host)
        if address is not None:
            self.check_address(host, port or DEFAULT_PORTS[parts.scheme.lower()], address)

    def check_address(self, host: str, port: int, address: Address) -> None:
        """Refuse a connection to ``address`` (which ``host`` resolved to) unless allowed."""
        host = host.lower().strip("[]")
        kind = kind_of(address)
        if (
            kind == "public"
            or (host, port) in self.origins
            or host in self.hosts
            or (kind == "loopback" and self.loopback)
            or any(address in ipaddress.ip_network(net) for net in self.networks)
        ):
            return
        raise refused(
            f"{host}:{port}: {address} is not a public address ({kind}); the service fetches "
            "only from public addresses, itself, and what ALVO_FETCH_ALLOW lists"
        )


def binds_loopback(host: str) -> bool:
    """Whether a service listening on ``host`` is reachable only from its own machine."""
    address = _literal(host)
    return host.lower() in LOOPBACK_NAMES if address is None else address.is_loopback


def parse_allow(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``ALVO_FETCH_ALLOW`` (CIDRs and host names, comma- or space-separated) -> both."""
    networks, hosts = [], []
    for entry in re.split(r"[,\s]+", text.strip().lower()):
        if not entry:
            continue
        try:
            networks.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            if not _HOST_NAME.match(entry):
                raise ValueError(
                    f"ALVO_FETCH_ALLOW: {entry!r} is neither a CIDR (10.0.0.0/8) nor a host name"
                ) from None
            hosts.append(entry)
    return tuple(networks), tuple(hosts)


class ConfinedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the confinement allows."""

    def __init__(self, confinement: Confinement) -> None:
        self.confinement = confinement
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        import anyio

        try:
            with anyio.fail_after(timeout):
                found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError, ValueError) as error:
            raise httpcore.ConnectError(f"{host}: cannot resolve ({error})") from error
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
        for address in addresses:  # all of them: a mixed answer is a rebinding attempt
            self.confinement.check_address(host, port, address)
        return await self.inner.connect_tcp(
            str(addresses[0]), port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise refused("the service does not fetch over Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
