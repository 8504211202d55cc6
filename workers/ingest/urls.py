"""URL canonicalisation and the outbound-request (SSRF) guard of live ingestion.

Pure apart from DNS: `check_outbound_url` resolves the host with `socket.getaddrinfo`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from workers.errors import InputError, TransientError

# Query parameters that only track the click, never select the content. Matched case-insensitively
# on the (percent-decoded) parameter name; every name starting with a prefix below is dropped too.
TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid",
        "li_fat_id", "igshid", "mc_cid", "mc_eid", "mkt_tok", "_ga", "_gl", "_hsenc", "_hsmi",
        "ref", "ref_src", "ref_url", "referrer", "cmpid", "ncid", "ocid", "s_cid", "icid",
        "soc_src", "soc_trk", "sr_share", "wt.mc_id", "at_medium", "at_campaign",
        "oly_anon_id", "oly_enc_id", "vero_id", "spm", "__twitter_impression",
    }
)  # fmt: skip
TRACKING_PREFIXES: tuple[str, ...] = ("utm_", "hsa_", "pk_", "mtm_", "ga_")

DEFAULT_PORTS: dict[str, str] = {"http": "80", "https": "443"}

# Cloud metadata endpoints, refused even before the generic private/link-local checks.
METADATA_ADDRESSES: frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address] = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, DigitalOcean
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    }
)
METADATA_HOSTS: frozenset[str] = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
    }
)

_PERCENT_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
_PERCENT_NAME = re.compile(r"%([0-9a-fA-F]{2})")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Iterable[str]]


# ---------------------------------------------------------------------------------------------
# Canonicalisation
# ---------------------------------------------------------------------------------------------


def _upper_escapes(part: str) -> str:
    return _PERCENT_ESCAPE.sub(lambda m: m.group(0).upper(), part)


def _is_tracking(segment: str) -> bool:
    name = segment.split("=", 1)[0]
    name = _PERCENT_NAME.sub(lambda m: chr(int(m.group(1), 16)), name).replace("+", " ")
    name = name.strip().lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


def _canonical_host(host: str) -> str:
    host = host.rstrip(".").lower()
    if not host or host.startswith("[") or host.isascii():
        return host
    try:
        import idna  # a dependency of httpx; UTS 46 mapping, IDNA 2008

        return idna.encode(host, uts46=True).decode("ascii").lower()
    except Exception:
        try:
            return host.encode("idna").decode("ascii").lower()
        except Exception:
            return host


def _canonical(url: str) -> str:
    text = url.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if not scheme or not parts.netloc:
        # Not a hierarchical URL we understand (mailto:, bare words, relative refs): drop only
        # the fragment.
        return urlunsplit(parts._replace(fragment="")) if parts.fragment else text
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if hostport.startswith("["):
        end = hostport.find("]")
        host, rest = (hostport[: end + 1], hostport[end + 1 :]) if end >= 0 else (hostport, "")
        port = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            host, port = hostport, ""
    else:
        host, colon, port = hostport.rpartition(":")
        if not colon:
            host, port = hostport, ""
    if (":" in host.strip("[]") and not host.startswith("[")) or (
        port and not (port.isascii() and port.isdigit())
    ):
        # Not host[:port]; leave the authority as written (lower-cased), nothing to normalise.
        host, port_part = hostport.lower(), ""
    else:
        host = _canonical_host(host)
        port_part = (
            "" if port == "" or DEFAULT_PORTS.get(scheme) == port.lstrip("0") else ":" + port
        )
    netloc = f"{userinfo}{at}{host}{port_part}"
    path = _upper_escapes(parts.path)
    stripped = path.rstrip("/")
    path = stripped if stripped else "/"
    segments = [s for s in parts.query.split("&") if s and not _is_tracking(s)]
    query = "&".join(sorted(_upper_escapes(s) for s in segments))
    return urlunsplit((scheme, netloc, path, query, ""))


def canonical_url(url: str) -> str:
    """The canonical form of a URL, for dedup keys and display.

    Lower-cases scheme and host, IDNA-encodes the host, drops default ports (80 for http,
    443 for https), the fragment and tracking parameters (`TRACKING_PARAMS`,
    `TRACKING_PREFIXES`), sorts the remaining query parameters (kept byte-for-byte as
    written, apart from upper-cased percent escapes), and strips trailing slashes from
    the path except the root. Idempotent; never raises on text (unparsable input comes
    back stripped).
    """
    if not isinstance(url, str):
        return ""
    try:
        # One pass is normally a fixed point; a few odd inputs (IDNA or case mappings that
        # change again) settle on a later pass. Iterating keeps the function idempotent.
        current = _canonical(url)
        for _ in range(4):
            again = _canonical(current)
            if again == current:
                return current
            current = again
        return current
    except Exception:
        return url.strip()


# ---------------------------------------------------------------------------------------------
# SSRF guard
# ---------------------------------------------------------------------------------------------


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _address_problem(ip: IPAddress) -> str | None:
    """Why this address may not be fetched from, or None if it is a public address."""
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    for embedded in (getattr(ip, "sixtofour", None), *(getattr(ip, "teredo", None) or ())):
        # 6to4 (2002::/16) and Teredo addresses carry an IPv4 address: judge that one too.
        if embedded is not None and embedded != ip:
            problem = _address_problem(embedded)
            if problem:
                return f"{problem} embedded in {ip}"
    if ip in METADATA_ADDRESSES:
        return "cloud metadata address"
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_multicast:
        return "multicast address"
    if ip.is_private:
        return "private address"
    if ip.is_reserved:
        return "reserved address"
    if not ip.is_global:
        return "non-global address"
    return None


@dataclass(frozen=True)
class OutboundPolicy:
    """Which hosts the fetcher may contact.

    Public addresses are always allowed; private, loopback, link-local, multicast, reserved,
    unspecified, other non-global and cloud-metadata addresses only when the host name, the
    address or a CIDR range containing it is in the allow-list.
    """

    allowed_hosts: frozenset[str] = frozenset()
    allowed_suffixes: tuple[str, ...] = ()
    allowed_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = _system_resolver

    @classmethod
    def from_setting(
        cls, allowlist: str | None, *, resolver: Resolver | None = None
    ) -> OutboundPolicy:
        """Parse a comma-separated allow-list: host names (`*.example` for subdomains),
        addresses or CIDR ranges, e.g. `"127.0.0.1,10.0.0.0/8,feeds.example"`."""
        hosts: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for raw in (allowlist or "").split(","):
            item = raw.strip()
            if not item:
                continue
            bare = item[1:-1] if item.startswith("[") and item.endswith("]") else item
            try:
                networks.append(ipaddress.ip_network(bare, strict=False))
                continue
            except ValueError:
                pass
            name = item.lower().rstrip(".")
            if name.startswith("*."):
                suffixes.append(name[1:])
            elif re.fullmatch(r"[a-z0-9_.-]+", _canonical_host(name)):
                hosts.add(_canonical_host(name))
            else:
                raise InputError("outbound allow-list", f"not a host, address or CIDR: {item!r}")
        return cls(frozenset(hosts), tuple(suffixes), tuple(networks), resolver or _system_resolver)

    def _host_allowed(self, host: str) -> bool:
        return host in self.allowed_hosts or any(host.endswith(s) for s in self.allowed_suffixes)

    def _address_allowed(self, ip: IPAddress) -> bool:
        candidates = [ip]
        mapped = getattr(ip, "ipv4_mapped", None)
        if mapped is not None:
            candidates.append(mapped)
        return any(
            c in net
            for c in candidates
            for net in self.allowed_networks
            if c.version == net.version
        )

    def check(self, url: str) -> None:
        """Raise InputError (naming the URL and the reason) unless `url` may be fetched.

        TOCTOU: this resolves the host now; the HTTP client resolves it again when it
        connects. A DNS answer that changes in between (DNS rebinding, TTL 0) can still
        reach a refused address. Closing that gap needs connecting to the vetted address
        itself (a custom transport) or an egress proxy/firewall; the check here stops the
        plain cases (literal addresses, names pointing at internal ranges, redirects).
        """
        try:
            parts = urlsplit(url.strip())
            scheme = parts.scheme.lower()
            host = parts.hostname
            port = parts.port
        except ValueError as exc:
            raise InputError(url, f"unparsable URL ({exc})") from None
        if scheme not in ("http", "https"):
            raise InputError(url, f"scheme {scheme or '(none)'!r} refused: only http and https")
        if not host:
            raise InputError(url, "no host in URL")
        host = _canonical_host(host)
        if port is None:
            port = 443 if scheme == "https" else 80
        if self._host_allowed(host):
            return
        if host in METADATA_HOSTS:
            raise InputError(url, f"host {host} is a cloud metadata endpoint")
        try:
            literal: IPAddress | None = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                addresses = list(dict.fromkeys(self.resolver(host, port)))
            except socket.gaierror as exc:
                if exc.errno in (getattr(socket, "EAI_AGAIN", -3), getattr(socket, "EAI_FAIL", -4)):
                    raise TransientError(f"{url}: DNS lookup of {host} failed: {exc}") from None
                raise InputError(url, f"cannot resolve host {host}: {exc}") from None
            except (OSError, UnicodeError) as exc:
                raise InputError(url, f"cannot resolve host {host}: {exc}") from None
        if not addresses:
            raise InputError(url, f"host {host} resolves to no address")
        for text in addresses:
            try:
                ip = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                raise InputError(
                    url, f"host {host} resolves to unparsable address {text!r}"
                ) from None
            problem = _address_problem(ip)
            if problem and not self._address_allowed(ip):
                raise InputError(
                    url, f"host {host} resolves to {ip}, a {problem} (not in the allow-list)"
                )


def check_outbound_url(url: str, allowlist: str = "") -> None:
    """Raise InputError unless `url` is http(s) and its host resolves only to allowed addresses."""
    OutboundPolicy.from_setting(allowlist).check(url)
