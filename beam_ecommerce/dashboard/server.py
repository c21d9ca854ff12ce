"""``beam-ecommerce dashboard``: the page, plotly.js and the JSON it polls, on localhost.

The standard library's threading HTTP server is enough for one person's browser
tabs, and adds nothing to install. Every JSON request opens the warehouse read-only,
reads and closes it (see ``reader``), so new loads show on the next poll, without a
restart, and writers are never kept waiting for long.
"""

from __future__ import annotations

import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from beam_ecommerce.dashboard.page import PLOTLY_JS_ROUTE, live_page, payload, plotly_js, to_json
from beam_ecommerce.dashboard.queries import Filters
from beam_ecommerce.dashboard.reader import WarehouseReader

_LOGGER = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050


class DashboardServer(ThreadingHTTPServer):
    """Serves one warehouse's dashboard; ``port=0`` picks a free port (see ``url``)."""

    daemon_threads = True

    def __init__(self, reader: WarehouseReader, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.reader = reader
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> threading.Thread:
        """Serves from a background thread (for tests and the demo); ``shutdown()`` stops it."""
        thread = threading.Thread(target=self.serve_forever, name="dashboard", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
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
