"""The SSRF guard: which URLs a channel may reach, checked on build and again on send."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from llmpulse._config_file import FieldError
from llmpulse.alerting.channels import DeliveryError, NetworkPolicy


class FakeDNS:
    """A resolver with fixed answers that counts its look-ups."""

    def __init__(self, answers: dict[str, Sequence[str]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append(host)
        if host not in self.answers:
            raise OSError(-2, "Name or service not known")
        return self.answers[host]


BLOCKED_LITERALS = [
    "http://127.0.0.1/", "http://127.1/", "http://0x7f000001/", "http://2130706433/",
    "http://0177.0.0.1/", "http://10.0.0.1/", "http://172.16.5.4/", "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/", "http://100.100.100.200/", "http://0.0.0.0/",
    "http://224.0.0.1/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/", "http://[fd00:ec2::254]/", "http://[fe80::1]/",
    "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/", "http://[::127.0.0.1]/",
    "http://[ff02::1]/", "http://[::]/", "https://[::ffff:10.0.0.1]:8443/x",
]  # fmt: skip


class TestLiterals:
    @pytest.mark.parametrize("url", BLOCKED_LITERALS)
    def test_internal_addresses_are_refused_on_build(self, url: str) -> None:
        """Loopback, private, link-local, metadata and their IPv6/legacy forms are refused."""
        with pytest.raises(FieldError, match=r"url: .* is not allowed") as exc:
            NetworkPolicy(resolver=FakeDNS({})).check_url(url, field="url")
        assert exc.value.field == "url"

    @pytest.mark.parametrize("url", ["https://93.184.216.34/hook", "https://[2606:4700::1111]/"])
    def test_public_addresses_pass(self, url: str) -> None:
        """A public IPv4 or IPv6 literal is a valid destination."""
        target = NetworkPolicy().check_url(url, field="url")
        assert NetworkPolicy().addresses(target) == [str(target.ip)]

    def test_blocked_literal_is_refused_at_send_too(self) -> None:
        """A target checked under a laxer policy is still refused by a stricter one at send."""
        target = NetworkPolicy(["127.0.0.1"]).check_url("http://127.0.0.1:9/", field="url")
        with pytest.raises(DeliveryError, match="blocked: loopback") as exc:
            NetworkPolicy().addresses(target)
        assert not exc.value.retryable


class TestHostnames:
    def test_name_resolving_to_private_is_refused(self) -> None:
        """A name whose answer (any one of them) is internal is refused, naming the address."""
        dns = FakeDNS({"hooks.example.com": ["93.184.216.34", "10.1.2.3"]})
        with pytest.raises(FieldError, match=r"10.1.2.3 is private"):
            NetworkPolicy(resolver=dns).check_url("https://hooks.example.com/x", field="url")

    def test_metadata_hostname_is_refused(self) -> None:
        """metadata.google.internal resolving to 169.254.169.254 is refused as link-local."""
        dns = FakeDNS({"metadata.google.internal": ["169.254.169.254"]})
        with pytest.raises(FieldError, match="link-local"):
            NetworkPolicy(resolver=dns).check_url("http://metadata.google.internal/", field="u")

    def test_localhost_through_the_real_resolver(self) -> None:
        """`localhost`, resolved by the system, is refused as loopback."""
        with pytest.raises(FieldError, match="loopback"):
            NetworkPolicy().check_url("http://localhost:8080/hook", field="url")

    def test_punycode_and_unicode_hosts(self) -> None:
        """An xn-- host (or its Unicode form, sent to DNS as xn--) resolving inside is refused."""
        dns = FakeDNS({"xn--bcher-kva.example": ["192.168.0.7"]})
        policy = NetworkPolicy(resolver=dns)
        for url in ("http://xn--bcher-kva.example/", "http://bücher.example/"):
            with pytest.raises(FieldError, match=r"192.168.0.7 is private"):
                policy.check_url(url, field="url")
        assert dns.calls == ["xn--bcher-kva.example"] * 2

    def test_unresolvable_on_build_is_checked_on_send(self) -> None:
        """A name DNS cannot answer now is accepted on build, and retryable on send."""
        dns = FakeDNS({})
        policy = NetworkPolicy(resolver=dns)
        target = policy.check_url("https://later.example/h", field="url")
        with pytest.raises(DeliveryError, match=r"cannot resolve later.example") as exc:
            policy.addresses(target)
        assert exc.value.retryable

    def test_rebinding_after_build_is_refused_on_send(self) -> None:
        """A name public at build time and internal at send time is refused, permanently."""
        dns = FakeDNS({"flip.example": ["93.184.216.34"]})
        policy = NetworkPolicy(resolver=dns)
        target = policy.check_url("https://flip.example/h", field="url")
        dns.answers["flip.example"] = ["127.0.0.1"]
        with pytest.raises(DeliveryError, match=r"resolves to 127.0.0.1, which is blocked") as exc:
            policy.addresses(target)
        assert not exc.value.retryable

    def test_send_resolves_once_and_returns_checked_addresses(self) -> None:
        """At send, one look-up; the addresses returned are the ones checked."""
        dns = FakeDNS({"hooks.example.com": ["93.184.216.34", "2606:4700::1111"]})
        policy = NetworkPolicy(resolver=dns)
        target = policy.check_url("https://hooks.example.com/x", field="url")
        dns.calls.clear()
        assert policy.addresses(target) == ["93.184.216.34", "2606:4700::1111"]
        assert dns.calls == ["hooks.example.com"]
        assert target.host_header == "hooks.example.com" and target.path == "/x"


class TestAllowList:
    def test_cidr_allows_addresses(self) -> None:
        """127.0.0.1 in the allow-list admits it (also as ::ffff:127.0.0.1), but not 127.0.0.2."""
        policy = NetworkPolicy(["127.0.0.1"])
        for url in ("http://127.0.0.1:8080/h", "http://[::ffff:127.0.0.1]:8080/h"):
            target = policy.check_url(url, field="url")
            assert policy.addresses(target)
        with pytest.raises(FieldError, match="loopback"):
            policy.check_url("http://127.0.0.2/", field="url")

    def test_hostname_and_wildcard(self) -> None:
        """An allowed name may resolve anywhere; *.corp.example covers its subdomains."""
        dns = FakeDNS({"am.internal": ["10.0.0.5"], "a.corp.example": ["10.0.0.6"],
                       "corp.example.evil.com": ["10.0.0.7"]})  # fmt: skip
        policy = NetworkPolicy(["am.internal", "*.corp.example"], resolver=dns)
        assert policy.addresses(policy.check_url("http://am.internal:9093", field="u")) == [
            "10.0.0.5"
        ]
        assert policy.addresses(policy.check_url("http://a.corp.example", field="u")) == [
            "10.0.0.6"
        ]
        with pytest.raises(FieldError):
            policy.check_url("http://corp.example.evil.com", field="u")

    def test_from_config(self) -> None:
        """The YAML forms: a list, or {allow: [...]}; bad entries name the field."""
        assert NetworkPolicy.from_config({"allow": ["10.0.0.0/8"]}).describe() == {
            "allow": ["10.0.0.0/8"]
        }
        assert NetworkPolicy.from_config(None).describe() == {"allow": []}
        with pytest.raises(FieldError, match="allow"):
            NetworkPolicy.from_config("10.0.0.0/8 127.0.0.1")
        with pytest.raises(FieldError, match="deny: unknown field"):
            NetworkPolicy.from_config({"deny": []})
        with pytest.raises(FieldError, match="not a valid hostname"):
            NetworkPolicy(["bad host!"])


class TestUrlShape:
    @pytest.mark.parametrize(
        ("url", "needle"),
        [
            ("ftp://example.com/x", "only http and https"),
            ("file:///etc/passwd", "only http and https"),
            ("gopher://example.com/", "only http and https"),
            ("/relative/path", "only http and https"),
            ("https://user:pw@example.com/", "credentials"),
            ("https://hooks.example.com@127.0.0.1/", "credentials"),
            ("http://127.0.0.1\\@example.com/", "backslashes"),
            ("https://example.com:99999/", "not a valid URL"),
            ("https://exa mple.com/", "whitespace"),
            ("", "required"),
        ],
    )
    def test_malformed_urls_are_refused(self, url: str, needle: str) -> None:
        """Non-http schemes, credentials, odd characters and bad ports are refused by name."""
        with pytest.raises(FieldError, match=needle):
            NetworkPolicy(resolver=FakeDNS({})).check_url(url, field="url")

    def test_https_required_unless_allowed(self) -> None:
        """require_https refuses http, except to an allow-listed host."""
        dns = FakeDNS({"hooks.slack.com": ["93.184.216.34"]})
        with pytest.raises(FieldError, match="must be https"):
            NetworkPolicy(resolver=dns).check_url(
                "http://hooks.slack.com/services/x", field="url", require_https=True
            )
        t = NetworkPolicy(["127.0.0.1"]).check_url(
            "http://127.0.0.1:1234/services/x", field="url", require_https=True
        )
        assert t.masked == "http://127.0.0.1:1234/***"

    def test_errors_never_show_path_or_query(self) -> None:
        """A refused URL's message names the host only, never the token in its path."""
        with pytest.raises(FieldError) as exc:
            NetworkPolicy().check_url("http://127.0.0.1/services/T0/B0/SECRETTOKEN?k=S2", field="u")
        assert "SECRETTOKEN" not in str(exc.value) and "S2" not in str(exc.value)
