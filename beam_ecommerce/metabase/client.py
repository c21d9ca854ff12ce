"""A small client of Metabase's REST API (JSON over HTTP, standard library only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

_TIMEOUT_SECONDS = 60


class MetabaseError(RuntimeError):
    """Metabase refused a request, or could not be reached."""


class MetabaseClient:
    """Calls ``/api/...`` of one Metabase, signed in with a session or an API key.

    Sign in with ``login`` (``POST /api/session``, the way every edition supports) or
    pass ``api_key`` (sent as ``x-api-key``).
    """

    def __init__(self, url: str, api_key: str | None = None) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers["x-api-key"] = api_key

    def login(self, username: str, password: str) -> None:
        session = self.request("POST", "/api/session", {"username": username, "password": password})
        self._headers["X-Metabase-Session"] = session["id"]

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, body)

    def put(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("PUT", path, body)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, headers=self._headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS) as response:
                text = response.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:500]
            raise MetabaseError(f"{method} {path}: HTTP {error.code}: {detail}") from None
        except urllib.error.URLError as error:
            raise MetabaseError(f"cannot reach Metabase at {self.url}: {error.reason}") from None
        return json.loads(text) if text else None
