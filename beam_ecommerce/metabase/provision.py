"""Provisions the starter dashboard in Metabase, idempotently.

Every object is looked up by name (the database among all databases, the questions and
the dashboard inside the ``beam-ecommerce`` collection) and created only when missing,
updated in place only when it differs from ``spec``: running it twice changes nothing
the second time. Endpoints and payloads follow Metabase's documented REST API:
``POST /api/session``, ``/api/database``, ``/api/collection``, ``/api/card``,
``/api/dashboard`` and ``PUT /api/dashboard/:id`` with the full list of ``dashcards``
(new ones with negative ids, kept ones with their own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from beam_ecommerce.metabase.client import MetabaseClient
from beam_ecommerce.metabase.spec import (
    COLLECTION,
    DASHBOARD,
    DASHBOARD_DESCRIPTION,
    DATABASE,
    QUESTIONS,
    BigQueryConnection,
    Question,
)

ENGINE = "bigquery-cloud-sdk"
# Metabase never sends secrets back; comparing them would always find a difference.
_SECRET_DETAILS = ("service-account-json",)


@dataclass
class Report:
    """What a run did, object by object: ``created``, ``updated`` or ``unchanged``."""

    actions: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, name, action)

    def add(self, kind: str, name: str, action: str) -> None:
        self.actions.append((kind, name, action))

    @property
    def changed(self) -> bool:
        return any(action != "unchanged" for _, _, action in self.actions)

    def lines(self) -> list[str]:
        return [f"{action:<9} {kind} {name!r}" for kind, name, action in self.actions]


def _listed(response: Any) -> list[dict[str, Any]]:
    """A list endpoint's items: newer Metabase wraps them as ``{"data": [...]}``, older returns the list."""
    return response["data"] if isinstance(response, dict) else response


def _native_sql(dataset_query: dict[str, Any]) -> str | None:
    """A native question's SQL, in the legacy shape or in MBQL 5 (``stages``) that newer versions answer."""
    if "native" in dataset_query and isinstance(dataset_query["native"], dict):
        return dataset_query["native"].get("query")
    stages = dataset_query.get("stages") or [{}]
    return stages[0].get("native")


def ensure_database(client: MetabaseClient, connection: BigQueryConnection, report: Report) -> int:
    wanted = {"name": DATABASE, "engine": ENGINE, "details": connection.details()}
    existing = next((db for db in _listed(client.get("/api/database")) if db["name"] == DATABASE), None)
    if existing is None:
        created = client.post("/api/database", wanted)
        report.add("database", DATABASE, "created")
        return created["id"]
    public = {k: v for k, v in wanted["details"].items() if k not in _SECRET_DETAILS}
    have = existing.get("details") or {}
    if existing.get("engine") != ENGINE or any(have.get(k) != v for k, v in public.items()):
        client.put(f"/api/database/{existing['id']}", wanted)
        report.add("database", DATABASE, "updated")
    else:
        report.add("database", DATABASE, "unchanged")
    return existing["id"]


def ensure_collection(client: MetabaseClient, report: Report) -> int:
    for collection in _listed(client.get("/api/collection")):
        if (
            collection.get("name") == COLLECTION
            and not collection.get("archived")
            and not collection.get("personal_owner_id")
        ):
            report.add("collection", COLLECTION, "unchanged")
            return collection["id"]
    created = client.post("/api/collection", {"name": COLLECTION, "parent_id": None})
    report.add("collection", COLLECTION, "created")
    return created["id"]


def _items(client: MetabaseClient, collection_id: int, model: str) -> dict[str, int]:
    items = _listed(client.get(f"/api/collection/{collection_id}/items?models={model}"))
    return {item["name"]: item["id"] for item in items if item.get("model", model) == model}


def _card_body(question: Question, database_id: int, collection_id: int, marts: str) -> dict[str, Any]:
    return {
        "name": question.name,
        "type": "question",
        "description": question.description,
        "collection_id": collection_id,
        "display": question.chart.display,
        "visualization_settings": question.chart.settings,
        "dataset_query": {
            "type": "native",
            "database": database_id,
            "native": {"query": question.query(marts), "template-tags": {}},
        },
    }


def _card_differs(card: dict[str, Any], body: dict[str, Any]) -> bool:
    query = card.get("dataset_query") or {}
    return (
        _native_sql(query) != body["dataset_query"]["native"]["query"]
        or query.get("database") != body["dataset_query"]["database"]
        or any(card.get(key) != body[key] for key in ("description", "display", "visualization_settings"))
    )


def ensure_cards(
    client: MetabaseClient, connection: BigQueryConnection, database_id: int, collection_id: int, report: Report
) -> dict[str, int]:
    """The questions' card ids by name, each created or brought up to date."""
    existing = _items(client, collection_id, "card")
    ids = {}
    for question in QUESTIONS:
        body = _card_body(question, database_id, collection_id, connection.marts)
        card_id = existing.get(question.name)
        if card_id is None:
            card_id = client.post("/api/card", body)["id"]
            report.add("question", question.name, "created")
        elif _card_differs(client.get(f"/api/card/{card_id}"), body):
            client.put(f"/api/card/{card_id}", body)
            report.add("question", question.name, "updated")
        else:
            report.add("question", question.name, "unchanged")
        ids[question.name] = card_id
    return ids


_LAYOUT_KEYS = ("card_id", "row", "col", "size_x", "size_y")


def ensure_dashboard(client: MetabaseClient, collection_id: int, card_ids: dict[str, int], report: Report) -> int:
    dashboard_id = _items(client, collection_id, "dashboard").get(DASHBOARD)
    action = "unchanged"
    if dashboard_id is None:
        dashboard_id = client.post(
            "/api/dashboard",
            {"name": DASHBOARD, "description": DASHBOARD_DESCRIPTION, "collection_id": collection_id},
        )["id"]
        action = "created"
    dashboard = client.get(f"/api/dashboard/{dashboard_id}")
    current = dashboard.get("dashcards") or []
    # Keep the id of a dashcard already showing a question, so its settings and history stay.
    kept = {dashcard["card_id"]: dashcard["id"] for dashcard in current}
    wanted = []
    for new_id, question in enumerate(QUESTIONS, start=1):
        card_id = card_ids[question.name]
        row, col, width, height = question.position
        wanted.append(
            {
                "id": kept.get(card_id, -new_id),
                "card_id": card_id,
                "row": row,
                "col": col,
                "size_x": width,
                "size_y": height,
                "parameter_mappings": [],
                "series": [],
            }
        )

    def layout(dashcards: list[dict[str, Any]]) -> list[tuple]:
        return sorted(tuple(d[key] for key in _LAYOUT_KEYS) for d in dashcards)

    if layout(current) != layout(wanted) or dashboard.get("description") != DASHBOARD_DESCRIPTION:
        client.put(f"/api/dashboard/{dashboard_id}", {"description": DASHBOARD_DESCRIPTION, "dashcards": wanted})
        action = "updated" if action == "unchanged" else action
    report.add("dashboard", DASHBOARD, action)
    return dashboard_id


def provision(client: MetabaseClient, connection: BigQueryConnection) -> tuple[int, Report]:
    """Brings the Metabase behind ``client`` (signed in) to ``spec``; returns the dashboard id and what changed."""
    report = Report()
    database_id = ensure_database(client, connection, report)
    collection_id = ensure_collection(client, report)
    card_ids = ensure_cards(client, connection, database_id, collection_id, report)
    return ensure_dashboard(client, collection_id, card_ids, report), report
