"""Every fetch is confined: http(s) only, no private/link-local/loopback unless allowed.

The service fetches what users point it to; these tests point it at the
places an attacker would (local files, cloud metadata, the intranet, its own
loopback behind a proxy) and at redirects that lead there.
"""

from __future__ import annotations

import pytest

from service.net.confinement import Confinement, parse_allow
from service.net.fetch import Fetcher, FetchPolicy, fetch_document
from service.reasons import AlvoError, Reason
from service.settings import Settings
from tests.security.hostile_servers import FixedAnswer, running

PUBLIC_DEPLOYMENT = Settings(host="0.0.0.0", base_url="https://alvo.example.org")


def policy_for(settings: Settings, **overrides: object) -> FetchPolicy:
    return FetchPolicy.from_settings(settings, **{"deadline_s": 5.0, **overrides})


def refusal(url: str, policy: FetchPolicy) -> AlvoError:
    with pytest.raises(AlvoError) as caught:
        fetch_document(url, policy=policy, what="LABELS")
    return caught.value


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "/etc/passwd",
        "ftp://example.org/x",
        "gopher://x/",
        "etc/passwd",
        "http://[bad/",  # not URLs at all: refused by name, not a library's exception
        "http://example.org:99999/",
        "http:///etc/passwd",
    ],
)
def test_only_http_urls_are_fetched_and_no_file_is_read(url):
    error = refusal(url, policy_for(Settings()))
    assert error.reason is Reason.FETCH_REFUSED
    assert "root:" not in str(error)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
        "http://[fe80::1]/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://[fd00::1]/",  # unique local
        "http://0.0.0.0:8000/",
        "http://224.0.0.1/",
        "http://[::ffff:169.254.169.254]/",
    ],
)
def test_private_and_link_local_addresses_are_refused_even_on_the_desktop(url):
    """Refused before any packet leaves: the desktop default allows loopback, not these."""
    error = refusal(url, policy_for(Settings()))
    assert error.reason is Reason.FETCH_REFUSED and "ALVO_FETCH_ALLOW" in error.detail


def test_loopback_is_refused_when_the_service_listens_beyond_loopback():
    with running(FixedAnswer(b"secret")) as server:
        policy = policy_for(PUBLIC_DEPLOYMENT)
        port = server.port
        for url in (
            server.url(),
            f"http://localhost:{port}/x",  # a name is resolved, and its address checked
            f"http://127.1:{port}/",  # spellings of 127.0.0.1 that are not an address literal
            f"http://2130706433:{port}/",
            f"http://0x7f.1:{port}/",
            f"http://[::ffff:7f00:1]:{port}/",
        ):
            error = refusal(url, policy)
            assert error.reason is Reason.FETCH_REFUSED and "loopback" in error.detail, url
        assert server.accepted == 0  # the request never reached it


def test_loopback_is_allowed_for_the_desktop_service():
    with running(FixedAnswer(b"hello")) as server:
        assert fetch_document(server.url(), policy=policy_for(Settings())) == b"hello"


def test_the_operator_allow_list_opens_networks_and_names():
    with running(FixedAnswer(b"hello")) as server:
        for allow in ("127.0.0.0/8", "localhost", "10.0.0.0/8 127.0.0.1"):
            settings = Settings(host="0.0.0.0", fetch_allow=allow)
            url = f"http://{'localhost' if allow == 'localhost' else '127.0.0.1'}:{server.port}/"
            assert fetch_document(url, policy=policy_for(settings)) == b"hello"
    with pytest.raises(ValueError, match="ALVO_FETCH_ALLOW"):
        parse_allow("10.0.0.0/8,not a host!")


def test_the_service_own_base_url_is_always_allowed():
    with running(FixedAnswer(b"own ssa")) as own, running(FixedAnswer(b"other")) as other:
        settings = Settings(host="0.0.0.0", base_url=own.base)
        assert fetch_document(own.url("/ssa"), policy=policy_for(settings)) == b"own ssa"
        assert refusal(other.url(), policy_for(settings)).reason is Reason.FETCH_REFUSED


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://10.1.2.3/",
        "file:///etc/passwd",
    ],
)
def test_every_redirect_hop_is_checked(location, tmp_path):
    with running(FixedAnswer()) as server:
        server.location = location
        policy = policy_for(Settings())  # loopback allowed: the first hop passes
        assert refusal(server.url(), policy).reason is Reason.FETCH_REFUSED
        (spectrum,) = Fetcher(tmp_path, policy).fetch_all([server.url("/spectrum.fits")])
        assert spectrum.error is not None and spectrum.error.reason is Reason.FETCH_REFUSED


def test_a_redirect_to_loopback_is_refused_for_a_public_deployment():
    with running(FixedAnswer(b"internal")) as internal, running(FixedAnswer()) as entry:
        entry.location = internal.url()
        settings = Settings(host="0.0.0.0", base_url=entry.base)  # the entry is our own URL
        assert refusal(entry.url(), policy_for(settings)).reason is Reason.FETCH_REFUSED
        assert entry.accepted == 1 and internal.accepted == 0


def test_redirect_loops_end_as_a_named_error():
    with running(FixedAnswer()) as server:
        server.location = server.url("/again")
        error = refusal(server.url(), policy_for(Settings()))
        assert error.reason is Reason.HTTP_ERROR and "redirects" in error.detail


def test_confinement_is_what_the_settings_say():
    desktop = Confinement.from_settings(Settings())
    assert desktop.loopback and desktop.origins == (("127.0.0.1", 8000),)
    deployment = Confinement.from_settings(PUBLIC_DEPLOYMENT)
    assert not deployment.loopback and deployment.origins == (("alvo.example.org", 443),)


def test_a_bad_allow_list_stops_the_service_at_start(tmp_path, capsys):
    from service.cli import main

    assert main(["serve", "--home", str(tmp_path), "--fetch-allow", "10.0.0.0/8,not*a*host"]) == 2
    assert "ALVO_FETCH_ALLOW: 'not*a*host'" in capsys.readouterr().err


@pytest.fixture
def https_server(tmp_path):
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for ``localhost``."""
    import datetime
    import http.server
    import ipaddress
    import ssl
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert = tmp_path / "cert.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private = tmp_path / "key.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, private)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], cert
    server.shutdown()
    server.server_close()


def test_https_goes_through_the_fence_and_still_verifies_the_certificate(https_server, monkeypatch):
    """The connection goes to the checked address; TLS still checks the name (SNI kept)."""
    port, cert = https_server
    url = f"https://localhost:{port}/"
    error = refusal(url, policy_for(Settings()))  # a self-signed certificate is not trusted
    assert error.reason is Reason.HTTP_ERROR and "certificate is not trusted" in error.detail
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # an operator's CA bundle applies
    assert fetch_document(url, policy=policy_for(Settings())) == b"hello"
    deployment = refusal(url, policy_for(PUBLIC_DEPLOYMENT))  # and https is fenced too
    assert deployment.reason is Reason.FETCH_REFUSED
