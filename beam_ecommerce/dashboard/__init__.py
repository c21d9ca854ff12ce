"""The local dashboard: a page on the dbt marts, served on localhost or saved as a snapshot.

``reader`` opens the warehouse (read-only, briefly), ``panels`` holds each panel's SQL,
``queries`` collects what the page shows, ``charts`` draws it with Plotly, ``page`` holds
the template and the snapshot, ``server`` serves it all.
"""

from beam_ecommerce.dashboard.page import write_snapshot
from beam_ecommerce.dashboard.panels import Filters
from beam_ecommerce.dashboard.reader import DuckDBReader, WarehouseReader, WarehouseUnavailable
from beam_ecommerce.dashboard.server import DEFAULT_PORT, DashboardServer

__all__ = [
    "DEFAULT_PORT",
    "DashboardServer",
    "DuckDBReader",
    "Filters",
    "WarehouseReader",
    "WarehouseUnavailable",
    "write_snapshot",
]
