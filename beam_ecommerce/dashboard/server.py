"""``beam-ecommerce dashboard``: the page, plotly.js and the JSON it polls, on localhost.

The standard library's threading HTTP server is enough for one person's browser
tabs, and adds nothing to install. Every JSON request opens the warehouse read-only,
reads and closes it (see ``reader``), so new loads show on the next poll, without a
restart, and writers are never kept waiting for long.

It serves only requests addressed to it by a name it knows (``host_allowed``): a page
on another site whose name an attacker re-points at 127.0.0.1 (DNS rebinding) reaches
the port with its own name in ``Host`` and gets a 421, not the data. A request must
arrive whole within ``REQUEST_TIMEOUT_SECONDS``, so a half-sent or trickled request
cannot hold a thread, and a client that goes away costs one debug line, not a traceback.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import math
import re
import socket
import sys
import threading
import time
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from beam_ecommerce.dashboard.page import PLOTLY_JS_ROUTE, live_page, payload, plotly_js, to_json
from beam_ecommerce.dashboard.panels import Filters
from beam_ecommerce.dashboard.reader import WarehouseReader

_LOGGER = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050
REQUEST_TIMEOUT_SECONDS = 30.0
"""How long a client has to send a whole request (or the next one on its connection), and each write to it."""

# A Host header: a name or an IPv4 address, or an IPv6 address in brackets; then an optional port.
_HOST_HEADER = re.compile(r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[^\s:\[\]@/]+))(?::\d{1,5})?")


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def host_allowed(host_header: str | None, names: frozenset[str]) -> bool:
    """Whether a request's ``Host`` addresses this server: one of ``names`` or an IP address.

    An IP address in ``Host`` cannot be rebound: a browser sends it only for a page whose
    origin is that address, not another site's. A name can, so only known names pass.
    """
    match = _HOST_HEADER.fullmatch(host_header or "")
    if match is None:
        return False
    if match["ipv6"] is not None:
        return _is_ip_address(match["ipv6"])
    name = match["name"].lower()
    return name in names or _is_ip_address(name)


class DashboardServer(ThreadingHTTPServer):
    """Serves one warehouse's dashboard; ``port=0`` picks a free port (see ``url``).

    ``allowed_hosts`` are the names, besides ``localhost`` and ``host``, a browser may
    use to reach it (IP addresses always may): for a server bound beyond loopback.
    """

    daemon_threads = True

    def __init__(
        self,
        reader: WarehouseReader,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        allowed_hosts: Iterable[str] = (),
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self.reader = reader
        self.host_names = frozenset(name.lower() for name in ("localhost", host, *allowed_hosts))
        self.request_timeout = request_timeout
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def exposed(self) -> bool:
        """Whether it listens beyond this machine (on an address that is not loopback)."""
        return not ipaddress.ip_address(self.server_address[0]).is_loopback

    def start(self) -> threading.Thread:
        """Serves from a background thread (for tests and the demo); ``shutdown()`` stops it."""
        thread = threading.Thread(target=self.serve_forever, name="dashboard", daemon=True)
        thread.start()
        return thread

    def handle_error(self, request, client_address) -> None:
        """A client that hung up or went silent is one debug line; anything else is a bug, with its traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            _LOGGER.debug("client %s went away: %s", client_address[0], error)
        else:
            super().handle_error(request, client_address)


class _ReadsBefore(socket.SocketIO):
    """A connection's reads, which all together wait no longer than until ``deadline`` (``time.monotonic``).

    A timeout per read alone lets a client that sends a byte now and then hold a thread for
    hours; each read here may only wait for what is left. Writes keep ``timeout`` each.
    """

    def __init__(self, connection: socket.socket, timeout: float) -> None:
        super().__init__(connection, "rb")
        self.connection = connection
        self.timeout = timeout
        self.deadline = math.inf

    def readinto(self, buffer) -> int | None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive in time")
        self.connection.settimeout(min(left, self.timeout))
        try:
            return super().readinto(buffer)
        finally:
            self.connection.settimeout(self.timeout)


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle's algorithm the body waited for the
    # client's delayed ACK, 40 ms on every answer of a kept-alive connection.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # StreamRequestHandler sets it on the socket
        super().setup()
        self.rfile.close()  # replaced by reads under one deadline per request
        self._reads = _ReadsBefore(self.connection, self.timeout)
        self.rfile = io.BufferedReader(self._reads)

    def handle_one_request(self) -> None:
        self._reads.deadline = time.monotonic() + self.timeout
        super().handle_one_request()

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1 or not host_allowed(hosts[0], self.server.host_names):
            message = f"this dashboard does not answer for host {', '.join(hosts) or '(none)'}"
            self._json(HTTPStatus.MISDIRECTED_REQUEST, {"status": "misdirected", "message": message})
            return
        url = urlsplit(self.path)
        if url.path == "/":
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", live_page().encode("utf-8"))
        elif url.path == f"/{PLOTLY_JS_ROUTE}":
            self._send(HTTPStatus.OK, "text/javascript; charset=utf-8", plotly_js(), cache_seconds=86400)
        elif url.path == "/api/dashboard":
            self._dashboard(url.query)
        else:
            self._json(HTTPStatus.NOT_FOUND, {"status": "not_found", "message": f"no page at {url.path}"})

    def _dashboard(self, query: str) -> None:
        try:
            filters = Filters.parse(dict(parse_qsl(query)))
        except ValueError as error:
            self._json(HTTPStatus.BAD_REQUEST, {"status": "bad_request", "message": str(error)})
            return
        try:
            data = payload(self.server.reader, filters)
        except Exception as error:  # noqa: BLE001 - the page shows one line; the log keeps the traceback
            _LOGGER.exception("dashboard query failed")
            message = f"The dashboard could not read the warehouse: {type(error).__name__}: {error}"
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"status": "error", "message": message})
            return
        self._json(HTTPStatus.OK, data)

    def _json(self, status: HTTPStatus, data: dict) -> None:
        self._send(status, "application/json", to_json(data).encode("utf-8"))

    def _send(self, status: HTTPStatus, content_type: str, body: bytes, cache_seconds: int = 0) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", f"max-age={cache_seconds}" if cache_seconds else "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's signature
        # One line per poll would drown the terminal; keep it for --verbose.
        _LOGGER.debug("%s %s", self.address_string(), format % args)
