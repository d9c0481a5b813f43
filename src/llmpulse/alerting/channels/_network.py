"""Where a channel may send: the SSRF guard for webhook, Slack, Discord and Alertmanager URLs.

A notification URL is written by whoever may edit a rule or a channel, and the server that sends
it sits inside the network: without a guard, "send a webhook" becomes "make the server POST to
the cloud metadata service at 169.254.169.254, or to any internal host" (HackerOne #1034456,
Grafana CVE-2022-29170). So a destination must be a public address unless the operator allowed
it (:class:`NetworkPolicy`):

- only ``http`` and ``https``; no credentials in the URL;
- the host is parsed, never pattern-matched: IP literals (also the legacy forms ``127.1``,
  ``0x7f000001``, ``2130706433``) go through :mod:`ipaddress`, IPv4-mapped, NAT64 and 6to4
  IPv6 addresses are unwrapped to the IPv4 address they reach, and an address is blocked when
  it falls in the special-purpose registries (the table below, kept here because
  ``ipaddress``'s own ``is_global`` was wrong for some ranges before CVE-2024-4032) or is not
  ``is_global``;
- a hostname is resolved and *every* answer checked; the request then goes to the checked
  address itself (``Host`` and TLS SNI keep the name), so a second, different DNS answer
  (DNS rebinding) never reaches the socket;
- redirects are never followed (the HTTP layer treats 3xx as a failure);
- the check runs when the channel is built (a bad URL is refused when saved) and again at every
  send (DNS answers change). A name that does not resolve at build time is accepted then and
  refused at send time if it resolves somewhere blocked.

The allow-list names CIDRs (``10.1.0.0/16``, ``127.0.0.1``) or hostnames (``am.internal``,
``*.corp.example``): a matching destination skips the address check, and may use plain http
where https is otherwise required (Slack, Discord).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from llmpulse._config_file import FieldError
from llmpulse.alerting.channels._base import DeliveryError

__all__ = [
    "NetworkPolicy",
    "Resolver",
    "Target",
    "blocked_reason",
    "parse_allow_entry",
    "split_allow_setting",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: ``resolver(host, port)`` returns the addresses ``host`` resolves to (strings); raises
#: ``OSError`` when it cannot resolve.
Resolver = Callable[[str, int], Sequence[str]]

# IANA IPv4/IPv6 special-purpose address registries: nothing here is a webhook receiver.
_SPECIAL: dict[str, str] = {
    "0.0.0.0/8": "'this network'",
    "10.0.0.0/8": "private",
    "100.64.0.0/10": "shared address space (carrier NAT, Alibaba metadata 100.100.100.200)",
    "127.0.0.0/8": "loopback",
    "169.254.0.0/16": "link-local (cloud metadata 169.254.169.254)",
    "172.16.0.0/12": "private",
    "192.0.0.0/24": "IETF protocol assignments",
    "192.0.2.0/24": "documentation",
    "192.88.99.0/24": "6to4 relay anycast",
    "192.168.0.0/16": "private",
    "198.18.0.0/15": "benchmarking",
    "198.51.100.0/24": "documentation",
    "203.0.113.0/24": "documentation",
    "224.0.0.0/4": "multicast",
    "240.0.0.0/4": "reserved",
    "::/128": "unspecified",
    "::1/128": "loopback",
    "::/96": "IPv4-compatible (deprecated)",
    "64:ff9b:1::/48": "local-use NAT64",
    "100::/64": "discard-only",
    "2001::/23": "IETF protocol assignments (Teredo, ORCHIDv2, ...)",
    "2001:db8::/32": "documentation",
    "3fff::/20": "documentation",
    "5f00::/16": "segment routing SIDs",
    "fc00::/7": "unique local (AWS metadata fd00:ec2::254)",
    "fe80::/10": "link-local",
    "fec0::/10": "site-local (deprecated)",
    "ff00::/8": "multicast",
}
_SPECIAL_NETS: list[tuple[IPNetwork, str]] = [
    (ipaddress.ip_network(net), why) for net, why in _SPECIAL.items()
]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA), in the system's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded(ip: IPAddress) -> list[IPAddress]:
    """``ip`` and the IPv4 addresses it reaches (IPv4-mapped, NAT64 and 6to4 forms)."""
    out: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            out.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            out.append(ip.sixtofour)
        if ip in _NAT64:
            out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public destination (``"loopback"``, ...), or ``None`` when it is."""
    for each in _embedded(ip):
        for net, why in _SPECIAL_NETS:
            if each.version == net.version and each in net:
                return why
        if not each.is_global:
            return "not globally reachable"
    return None


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``127.1``, ``0x7f.1``, ``2130706433``: forms the C resolver accepts as IPv4 literals."""
    if not re.fullmatch(r"[0-9a-fx.]+", host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return _legacy_ipv4(host)


@dataclass(frozen=True, repr=False)
class Target:
    """A checked destination: connect to one of the checked addresses of ``host``.

    Its ``repr`` is the masked URL: the path and query of a Slack or Discord URL are secret.
    """

    scheme: str
    host: str  # ASCII (IDNA) hostname or IP literal, lowercase, no brackets
    port: int
    path: str  # path and query, as given ("/" when empty)
    ip: IPAddress | None  # when the URL names an address, not a name
    allowed: bool  # the policy's allow-list matched: no address check

    @property
    def host_header(self) -> str:
        """``Host`` as the URL named it (the default port left out)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = {"https": 443, "http": 80}.get(self.scheme)
        return host if self.port == default else f"{host}:{self.port}"

    def __repr__(self) -> str:
        return f"Target({self.masked})"

    @property
    def masked(self) -> str:
        """``scheme://host[:port]/***``: what logs and ``describe()`` show of a secret URL."""
        return f"{self.scheme}://{self.host_header}/***"


class NetworkPolicy:
    """Which non-public destinations channels may reach; everything public is allowed.

    ``allow`` lists CIDRs or addresses (``"127.0.0.1"``, ``"10.0.0.0/8"``, ``"::1"``) and
    hostnames (``"alertmanager.internal"``, ``"*.corp.example"``). ``resolver`` is injectable
    for tests; by default the system's.

    >>> NetworkPolicy(allow=["127.0.0.1"]).describe()
    {'allow': ['127.0.0.1/32']}
    """

    def __init__(self, allow: Iterable[str] = (), *, resolver: Resolver | None = None) -> None:
        if isinstance(allow, str):
            allow = [allow]
        nets: list[IPNetwork] = []
        hosts: list[str] = []
        for i, entry in enumerate(allow):
            parsed = parse_allow_entry(entry, f"allow[{i}]")
            if isinstance(parsed, str):
                hosts.append(parsed)
            else:
                nets.append(parsed)
        self._nets = tuple(dict.fromkeys(nets))
        self._hosts = tuple(dict.fromkeys(hosts))
        self._resolve: Resolver = resolver or system_resolver

    def extended(self, allow: Iterable[str]) -> NetworkPolicy:
        """This policy with more entries (a rules file's ``network.allow`` on top of the
        server's setting); the same resolver."""
        entries = [str(n) for n in self._nets] + list(self._hosts) + list(allow)
        return NetworkPolicy(entries, resolver=self._resolve)

    @classmethod
    def from_config(cls, value: Any, *, resolver: Resolver | None = None) -> NetworkPolicy:
        """From YAML: a list of entries, or ``{"allow": [...]}``; ``None`` is the default."""
        if value is None:
            return cls(resolver=resolver)
        if isinstance(value, Mapping):
            extra = set(value) - {"allow"}
            if extra:
                name = sorted(extra)[0]
                raise FieldError(f"{name}: unknown field (only 'allow')", name, "unknown field")
            value = value.get("allow") or []
        if not isinstance(value, (list, tuple)):
            raise FieldError(
                "allow: a list of CIDRs or hostnames", "allow", "a list of CIDRs or hostnames"
            )
        return cls(value, resolver=resolver)

    @classmethod
    def from_setting(cls, text: str, *, resolver: Resolver | None = None) -> NetworkPolicy:
        """From a comma-separated setting (``LLMPULSE_ALERT_ALLOW_NETWORK``, ``--allow-network``)."""
        return cls(split_allow_setting(text), resolver=resolver)

    def describe(self) -> dict[str, list[str]]:
        """The allow-list (nothing in it is secret)."""
        return {"allow": [str(n) for n in self._nets] + list(self._hosts)}

    def allows_ip(self, ip: IPAddress) -> bool:
        """Whether the allow-list names ``ip`` (also through its IPv4-mapped form)."""
        return any(
            each.version == n.version and each in n for each in _embedded(ip) for n in self._nets
        )

    def allows_host(self, host: str) -> bool:
        """Whether the allow-list names ``host`` (exactly, or by a ``*.`` suffix)."""
        for entry in self._hosts:
            if entry.startswith("*."):
                if host.endswith(entry[1:]):
                    return True
            elif host == entry:
                return True
        return False

    def check_url(self, url: Any, *, field: str, require_https: bool = False) -> Target:
        """Parse and check ``url`` when a channel is built; ``FieldError`` on ``field`` if bad.

        Error messages name the host, never the path or query (they may hold a token).
        """
        target = _parse_url(url, field)
        if target.scheme == "http" and require_https and not self._is_allowed(target):
            raise FieldError(
                f"{field}: must be https (plain http only to a host in the allow-list)",
                field,
                "must be https (plain http only to a host in the allow-list)",
            )
        return self._check(target, field)

    def check_host(self, host: Any, port: int, *, field: str, scheme: str = "smtp") -> Target:
        """Check a bare ``host`` (an SMTP server) the way :meth:`check_url` checks a URL's host.

        A mail server on the internal network is common (a local relay): it needs an entry in
        the allow-list like any other internal destination.
        """
        if not isinstance(host, str) or not host.strip():
            raise FieldError(f"{field}: required, a hostname or address", field, "required")
        text = host.strip().strip("[]")
        ip = _parse_ip(text)
        name = str(ip) if ip is not None else _ascii_host(text, field)
        return self._check(Target(scheme, name, port, "", ip, False), field)

    def _check(self, target: Target, field: str) -> Target:
        target = Target(
            target.scheme, target.host, target.port, target.path, target.ip,
            self._is_allowed(target),
        )  # fmt: skip
        if target.allowed:
            return target
        if target.ip is not None:
            why = blocked_reason(target.ip)
            if why is not None:
                raise _blocked(field, target.host, str(target.ip), why)
            return target
        try:
            addresses = self._resolve(target.host, target.port)
        except OSError:
            return target  # unresolvable now: checked again at every send
        for address in addresses:
            ip = _parse_ip(address)
            why = "unparseable address" if ip is None else blocked_reason(ip)
            if why is not None and not (ip is not None and self.allows_ip(ip)):
                raise _blocked(field, target.host, address, why)
        return target

    def addresses(self, target: Target) -> list[str]:
        """The addresses to connect to, resolved once and all checked, at send time.

        Raises a retryable ``DeliveryError`` when the name does not resolve, a permanent one
        when any answer is blocked (a name that resolves inside the network is refused whole).
        """
        allowed = self._is_allowed(target)  # this policy's verdict, not the one at build
        if target.ip is not None:
            if not allowed:
                why = blocked_reason(target.ip)
                if why is not None:
                    raise DeliveryError(
                        f"destination {target.host} is blocked: {why}", retryable=False
                    )
            return [str(target.ip)]
        try:
            answers = list(self._resolve(target.host, target.port))
        except OSError as exc:
            raise DeliveryError(
                f"cannot resolve {target.host}: {exc.strerror or type(exc).__name__}",
                retryable=True,
            ) from exc
        if not answers:
            raise DeliveryError(f"cannot resolve {target.host}: no address", retryable=True)
        checked: list[str] = []
        for address in answers:
            ip = _parse_ip(address)
            if ip is None:
                raise DeliveryError(f"{target.host} resolved to {address!r}", retryable=False)
            why = None if allowed or self.allows_ip(ip) else blocked_reason(ip)
            if why is not None:
                raise DeliveryError(
                    f"destination {target.host} resolves to {ip}, which is blocked: {why}",
                    retryable=False,
                )
            checked.append(str(ip))
        return checked

    def _is_allowed(self, target: Target) -> bool:
        if target.ip is not None:
            return self.allows_ip(target.ip)
        return self.allows_host(target.host)


def parse_allow_entry(entry: Any, field: str) -> IPNetwork | str:
    """One allow-list entry: a network (``10.0.0.0/8``, ``127.0.0.1``) or a hostname
    (``am.internal``, ``*.corp.example``, in its IDNA form); ``FieldError`` on ``field``."""
    if not isinstance(entry, str) or not entry.strip():
        detail = f"each entry is an address, a CIDR or a hostname, got {entry!r}"
        raise FieldError(f"{field}: {detail}", field, detail)
    text = entry.strip().lower()
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        pass
    if "/" in text or (":" in text and not text.startswith("*.")):
        detail = f"{entry.strip()!r} is not a valid address or CIDR"
        raise FieldError(f"{field}: {detail}", field, detail)
    wildcard = text.startswith("*.")
    name = _ascii_host(text[2:] if wildcard else text, field)
    return f"*.{name}" if wildcard else name


def split_allow_setting(text: str) -> list[str]:
    """The entries of a comma-separated allow-list setting (blanks dropped)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _blocked(field: str, host: str, address: str, why: str) -> FieldError:
    detail = (
        f"{host} is not allowed: {address} is {why}; add it to the network allow-list "
        "if this receiver is meant to be internal"
    )
    return FieldError(f"{field}: {detail}", field, detail)


def _ascii_host(host: str, field: str) -> str:
    """The IDNA (punycode) form of ``host``, lowercase, without a trailing dot."""
    host = host.rstrip(".").lower()
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        ascii_host = ""
    if not _HOSTNAME.match(ascii_host):
        detail = f"{host!r} is not a valid hostname"
        raise FieldError(f"{field}: {detail}", field, detail)
    return ascii_host


def _parse_url(url: Any, field: str) -> Target:
    def bad(detail: str) -> FieldError:
        return FieldError(f"{field}: {detail}", field, detail)

    if not isinstance(url, str) or not url.strip():
        raise bad("required, an http(s) URL")
    if any(c.isspace() or ord(c) < 32 for c in url.strip()) or "\\" in url:
        raise bad("the URL contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise bad("not a valid URL (bad port or brackets)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise bad(f"only http and https URLs are allowed, not {scheme or 'a relative URL'!r}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise bad("credentials in the URL are not supported")
    if not parts.hostname:
        raise bad("the URL has no host")
    ip = _parse_ip(parts.hostname)
    host = str(ip) if ip is not None else _ascii_host(parts.hostname, field)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    default = 443 if scheme == "https" else 80
    return Target(scheme, host, port or default, path, ip, False)
