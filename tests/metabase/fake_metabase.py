"""A fake Metabase: the REST endpoints the provisioning uses, with state, on a free local port.

Metabase (a JVM server with its own application database) cannot run here, so the
provisioning is tested against this fake instead. Its requests and answers follow
Metabase's API reference (v0.50 and later): list endpoints wrapped as ``{"data": [...]}``,
secrets in database ``details`` never sent back, ``GET /api/card/:id`` answering the
query in MBQL 5 (``stages``) as current versions do, and ``PUT /api/dashboard/:id``
taking the complete ``dashcards`` list (negative ids create, missing ones are removed).
Every request is recorded, so tests can check what a run changed.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

USERNAME, PASSWORD = "admin@example.com", "correct horse"
REDACTED = "**MetabasePass**"
_SECRET_DETAILS = {"service-account-json"}


@dataclass
class Call:
    method: str
    path: str
    body: Any


@dataclass
class State:
    databases: dict[int, dict] = field(default_factory=dict)
    collections: dict[int, dict] = field(default_factory=dict)
    cards: dict[int, dict] = field(default_factory=dict)
    dashboards: dict[int, dict] = field(default_factory=dict)
    sessions: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        # Every Metabase has the admin's personal collection; a same-named one must not be taken for ours.
        self.collections[next(self.ids)] = {
            "name": "beam-ecommerce",
            "personal_owner_id": 1,
            "archived": False,
        }

    def changes(self) -> list[Call]:
        """The calls that could change something, signing in aside."""
        return [c for c in self.calls if c.method != "GET" and c.path != "/api/session"]


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _require(body: dict, *keys: str) -> None:
    missing = [key for key in keys if key not in body]
    if missing:
        raise _HTTPError(400, f"missing {missing}")


class FakeMetabase(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.state = State()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def card_sql(self, card_id: int) -> str:
        return self.state.cards[card_id]["dataset_query"]["native"]["query"]


class _Handler(BaseHTTPRequestHandler):
    server: FakeMetabase

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        with self.server.lock:
            state = self.server.state
            state.calls.append(Call(method, url.path, body))
            try:
                if (method, url.path) != ("POST", "/api/session") and (
                    self.headers.get("X-Metabase-Session") not in state.sessions
                ):
                    raise _HTTPError(401, "Unauthenticated")
                status, answer = 200, _route(state, method, url.path, parse_qs(url.query), body)
            except _HTTPError as error:
                status, answer = error.status, {"message": str(error)}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _public_database(database_id: int, database: dict) -> dict:
    details = {k: (REDACTED if k in _SECRET_DETAILS else v) for k, v in database["details"].items()}
    return {"id": database_id, **database, "details": details}


def _card_answer(card_id: int, card: dict) -> dict:
    query = card["dataset_query"]
    mbql5 = {
        "lib/type": "mbql/query",
        "database": query["database"],
        "stages": [
            {"lib/type": "mbql.stage/native", "native": query["native"]["query"], "template-tags": {}},
        ],
    }
    return {"id": card_id, **card, "dataset_query": mbql5, "query_type": "native", "archived": False}


def _route(state: State, method: str, path: str, query: dict, body: Any) -> Any:
    if (method, path) == ("POST", "/api/session"):
        if body != {"username": USERNAME, "password": PASSWORD}:
            raise _HTTPError(401, "did not match stored password")
        token = str(uuid.uuid4())
        state.sessions.add(token)
        return {"id": token}
    if (method, path) == ("GET", "/api/database"):
        listed = [_public_database(i, d) for i, d in state.databases.items()]
        return {"data": listed, "total": len(listed)}
    if (method, path) == ("POST", "/api/database"):
        _require(body, "name", "engine", "details")
        database_id = next(state.ids)
        state.databases[database_id] = {k: body[k] for k in ("name", "engine", "details")}
        return _public_database(database_id, state.databases[database_id])
    if method == "PUT" and (match := re.fullmatch(r"/api/database/(\d+)", path)):
        database = state.databases[int(match[1])]
        database.update({k: v for k, v in body.items() if k in ("name", "engine", "details")})
        return _public_database(int(match[1]), database)
    if (method, path) == ("GET", "/api/collection"):
        return [{"id": "root", "name": "Our analytics"}] + [{"id": i, **c} for i, c in state.collections.items()]
    if (method, path) == ("POST", "/api/collection"):
        _require(body, "name")
        collection_id = next(state.ids)
        state.collections[collection_id] = {"name": body["name"], "personal_owner_id": None, "archived": False}
        return {"id": collection_id, **state.collections[collection_id]}
    if method == "GET" and (match := re.fullmatch(r"/api/collection/(\d+)/items", path)):
        collection_id, models = int(match[1]), set(query.get("models", ["card", "dashboard"]))
        items = [
            {"id": i, "name": thing["name"], "model": model}
            for model, things in (("card", state.cards), ("dashboard", state.dashboards))
            if model in models
            for i, thing in things.items()
            if thing["collection_id"] == collection_id
        ]
        return {"data": items, "total": len(items), "models": sorted(models)}
    if (method, path) == ("POST", "/api/card"):
        _require(body, "name", "dataset_query", "display", "visualization_settings")
        card_id = next(state.ids)
        state.cards[card_id] = dict(body)
        return _card_answer(card_id, state.cards[card_id])
    if match := re.fullmatch(r"/api/card/(\d+)", path):
        card_id = int(match[1])
        if card_id not in state.cards:
            raise _HTTPError(404, "Not found.")
        if method == "PUT":
            state.cards[card_id].update(body)
        return _card_answer(card_id, state.cards[card_id])
    if (method, path) == ("POST", "/api/dashboard"):
        _require(body, "name")
        dashboard_id = next(state.ids)
        state.dashboards[dashboard_id] = {
            "name": body["name"],
            "description": body.get("description"),
            "collection_id": body.get("collection_id"),
            "dashcards": [],
        }
        return {"id": dashboard_id, **state.dashboards[dashboard_id]}
    if match := re.fullmatch(r"/api/dashboard/(\d+)", path):
        dashboard = state.dashboards[int(match[1])]
        if method == "PUT":
            _put_dashboard(state, dashboard, body)
        dashcards = [
            dict(d, card=_card_answer(d["card_id"], state.cards[d["card_id"]])) for d in dashboard["dashcards"]
        ]
        return {"id": int(match[1]), **dashboard, "dashcards": dashcards}
    raise _HTTPError(404, f"no fake for {method} {path}")


def _put_dashboard(state: State, dashboard: dict, body: dict) -> None:
    for key in ("name", "description"):
        if key in body:
            dashboard[key] = body[key]
    if "dashcards" not in body:
        return
    known = {d["id"] for d in dashboard["dashcards"]}
    replaced = []
    for dashcard in body["dashcards"]:
        _require(dashcard, "id", "card_id", "row", "col", "size_x", "size_y")
        if dashcard["id"] >= 0 and dashcard["id"] not in known:
            raise _HTTPError(400, f"dashcard {dashcard['id']} is not on this dashboard")
        if dashcard["card_id"] not in state.cards:
            raise _HTTPError(400, f"no card {dashcard['card_id']}")
        dashcard_id = dashcard["id"] if dashcard["id"] >= 0 else next(state.ids)
        replaced.append({**dashcard, "id": dashcard_id})
    dashboard["dashcards"] = replaced
