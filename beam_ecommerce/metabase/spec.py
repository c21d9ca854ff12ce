"""The starter dashboard as code: the BigQuery connection, six native-SQL questions, one dashboard.

The questions mirror the local dashboard's panels and read the same dbt marts (the
live one reads the view ``live_minutes`` over the stream's ``live_metrics``), which
on BigQuery live in the dataset ``<target dataset>_marts`` (see
``dbt/macros/generate_schema_name.sql``). Their SQL is plain enough to run on DuckDB
too, which is how the tests check it against the marts' columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

COLLECTION = "beam-ecommerce"
DATABASE = "beam-ecommerce BigQuery"
DASHBOARD = "beam-ecommerce: shop overview"
DASHBOARD_DESCRIPTION = (
    "The stream's last hour live, then revenue, orders, conversion, top products and dead letters from the dbt marts."
)
# Metabase lays dashboards out on a 24-column grid.
GRID_COLUMNS = 24


@dataclass(frozen=True)
class Chart:
    """How Metabase draws a question: its ``display`` and the ``visualization_settings`` that display reads."""

    display: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Question:
    """A saved native-SQL question and where it sits on the dashboard."""

    name: str
    description: str
    sql: str  # ``{marts}`` stands for the marts dataset, e.g. `project.analytics_marts`
    chart: Chart
    # (row, col, width, height) on the dashboard grid
    position: tuple[int, int, int, int] = (0, 0, 12, 6)

    def query(self, marts: str) -> str:
        return self.sql.format(marts=marts)


def _graph(display: str, dimensions: list[str], metrics: list[str], stacked: bool = False) -> Chart:
    """A line, bar, row or combo chart: ``dimensions`` along one axis, ``metrics`` on the other."""
    settings: dict[str, Any] = {"graph.dimensions": dimensions, "graph.metrics": metrics}
    if stacked:
        settings["stackable.stack_type"] = "stacked"
    return Chart(display, settings)


QUESTIONS = (
    Question(
        name="Live: the last hour per minute",
        description="From the stream's live_metrics, current at every refresh: orders, revenue (EUR), events/s "
        "and dead letters per event-time minute.",
        sql="""SELECT minute_start, orders, revenue_eur, events_per_second, dead_letters
FROM {marts}.live_minutes
ORDER BY minute_start""",
        chart=_graph("combo", ["minute_start"], ["orders", "revenue_eur", "events_per_second", "dead_letters"]),
        position=(0, 0, GRID_COLUMNS, 6),
    ),
    Question(
        name="Daily net revenue (EUR)",
        description="Net revenue per day, every currency converted to EUR, refunds deducted.",
        sql="""SELECT revenue_date, SUM(net_revenue_eur) AS net_revenue_eur
FROM {marts}.dm_daily_revenue
GROUP BY revenue_date
ORDER BY revenue_date""",
        chart=_graph("line", ["revenue_date"], ["net_revenue_eur"]),
        position=(6, 0, GRID_COLUMNS, 6),
    ),
    Question(
        name="Orders by category and status",
        description="Orders placed, by product category and current status.",
        sql="""SELECT product_category, status, COUNT(*) AS orders
FROM {marts}.fct_orders
GROUP BY product_category, status
ORDER BY product_category, status""",
        chart=_graph("bar", ["product_category", "status"], ["orders"], stacked=True),
        position=(12, 0, 12, 6),
    ),
    Question(
        name="Conversion funnel",
        description="Sessions that viewed, added to cart, ordered and paid.",
        sql="""SELECT step, sessions FROM (
  SELECT 1 AS step_order, 'view' AS step, SUM(sessions_with_view) AS sessions FROM {marts}.dm_daily_funnel
  UNION ALL
  SELECT 2, 'cart', SUM(sessions_with_cart) FROM {marts}.dm_daily_funnel
  UNION ALL
  SELECT 3, 'order', SUM(sessions_with_order) FROM {marts}.dm_daily_funnel
  UNION ALL
  SELECT 4, 'payment', SUM(sessions_with_payment) FROM {marts}.dm_daily_funnel
) AS steps
ORDER BY step_order""",
        chart=Chart("funnel", {"funnel.dimension": "step", "funnel.metric": "sessions"}),
        position=(12, 12, 12, 6),
    ),
    Question(
        name="Top products",
        description="The ten products with the most units ordered.",
        sql="""SELECT products.product_name, ANY_VALUE(items.product_category) AS product_category,
  SUM(items.quantity) AS units, COUNT(DISTINCT items.order_id) AS orders, items.product_id
FROM {marts}.fct_order_items AS items
JOIN {marts}.dim_products AS products ON products.product_id = items.product_id
GROUP BY items.product_id, products.product_name
ORDER BY units DESC, items.product_id
LIMIT 10""",
        chart=_graph("row", ["product_name"], ["units"]),
        position=(18, 0, 12, 6),
    ),
    Question(
        name="Dead letters by stage and reason",
        description="Records the pipelines rejected, per day, by stage and error type.",
        sql="""SELECT dead_letter_date, CONCAT(stage, ': ', error_type) AS reason, SUM(dead_letters) AS dead_letters
FROM {marts}.dm_dead_letters_daily
GROUP BY dead_letter_date, reason
ORDER BY dead_letter_date, reason""",
        chart=_graph("bar", ["dead_letter_date", "reason"], ["dead_letters"], stacked=True),
        position=(18, 12, 12, 6),
    ),
)


@dataclass(frozen=True)
class BigQueryConnection:
    """Where Metabase reads the marts: a project, the marts dataset, a service account's JSON key."""

    project: str
    marts_dataset: str
    service_account_json: str

    @property
    def marts(self) -> str:
        """The dataset as the questions' SQL names it (backquoted: project ids may hold dashes)."""
        return f"`{self.project}.{self.marts_dataset}`"

    def details(self) -> dict[str, Any]:
        """The ``details`` of Metabase's BigQuery driver (engine ``bigquery-cloud-sdk``)."""
        return {
            "project-id": self.project,
            "service-account-json": self.service_account_json,
            "dataset-filters-type": "inclusion",
            "dataset-filters-patterns": self.marts_dataset,
        }
