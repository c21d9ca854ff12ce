"""The page: its template, the JSON it polls, and the static snapshot.

plotly.js comes from the installed ``plotly`` package (``plotly/package_data``), so
the page works with no network, from a fresh clone, with no build step.
"""

from __future__ import annotations

import os
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from plotly.io.json import to_json_plotly

from beam_ecommerce.dashboard.charts import figures
from beam_ecommerce.dashboard.panels import Filters
from beam_ecommerce.dashboard.queries import collect
from beam_ecommerce.dashboard.reader import WarehouseReader

PLOTLY_JS_ROUTE = "static/plotly.min.js"
_SNAPSHOT_SLOT = "/*SNAPSHOT*/null"
_PLOTLY_SLOT = "<!--PLOTLY-->"
_SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)


def payload(reader: WarehouseReader, filters: Filters) -> dict[str, Any]:
    """What ``/api/dashboard`` answers: the marts' data, its status and one figure per chart."""
    data = collect(reader, filters)
    if "sections" in data:
        data["figures"] = figures(data["sections"])
    return data


def to_json(data: dict[str, Any]) -> str:
    return to_json_plotly(data)


@cache
def _template() -> str:
    return resources.files("beam_ecommerce.dashboard").joinpath("page.html").read_text(encoding="utf-8")


@cache
def plotly_js() -> bytes:
    """The plotly.js bundle that ships inside the ``plotly`` Python package."""
    return resources.files("plotly").joinpath("package_data", "plotly.min.js").read_bytes()


def _script_safe(text: str) -> str:
    # Inside <script>, "</script" would end the element early; "<\/script" means the same to JavaScript.
    return _SCRIPT_END.sub(r"<\\/\1", text)


def live_page() -> str:
    """The served page: it loads plotly.js from the server and polls ``api/dashboard``."""
    return _template().replace(_PLOTLY_SLOT, f'<script src="{PLOTLY_JS_ROUTE}"></script>')


def snapshot_page(data: dict[str, Any]) -> str:
    """One self-contained HTML file: plotly.js and the data inline, no server needed."""
    inline_js = f"<script>{_script_safe(plotly_js().decode('utf-8'))}</script>"
    # plotly.js first: the data, put in last, can hold any text without being taken for a slot.
    page = _template().replace(_PLOTLY_SLOT, inline_js)
    return page.replace(_SNAPSHOT_SLOT, _script_safe(to_json(data)))


def write_snapshot(reader: WarehouseReader, path: str | os.PathLike[str], filters: Filters | None = None) -> Path:
    """Writes the snapshot of what the live page would show now (all data by default); returns its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(snapshot_page(payload(reader, filters or Filters())), encoding="utf-8")
    return target
