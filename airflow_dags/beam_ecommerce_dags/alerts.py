"""Alerts of the beam-ecommerce DAGs: a task failed, or a run missed its deadline.

Both e-mail the Variable's ``alert_emails`` through Airflow's SMTP connection
(``smtp_default``) and log an error either way, so an unconfigured alert still shows in
the logs rather than vanishing.
"""

from __future__ import annotations

import logging
from typing import Any

_LOGGER = logging.getLogger(__name__)


def _recipients() -> tuple[str, ...]:
    from beam_ecommerce_dags.settings import SettingsError, load

    try:
        return load().alert_emails
    except SettingsError:
        return ()


def failure_message(context: dict[str, Any]) -> tuple[str, str]:
    """Subject and body of a task-failure e-mail."""
    ti = context.get("task_instance") or context.get("ti")
    dag_run = context.get("dag_run")
    task = getattr(ti, "task_id", "?")
    run = getattr(dag_run, "run_id", "?")
    subject = f"[beam-ecommerce] {task} failed in {run}"
    body = f"Task {task} of DAG run {run} failed after its retries: {context.get('exception')!r}."
    return subject, body


def deadline_message(context: dict[str, Any]) -> tuple[str, str]:
    """Subject and body of a missed-deadline e-mail (the context is the deadline's small one)."""
    dag_run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    subject = f"[beam-ecommerce] {dag_run.get('dag_id', '?')} run {dag_run.get('run_id', '?')} is late"
    body = (
        f"The run {dag_run.get('run_id', '?')} was due by {deadline.get('deadline_time', '?')} "
        f"and is still {dag_run.get('state', '?')}."
    )
    return subject, body


def notify_failure(context: dict[str, Any]) -> None:
    """``on_failure_callback`` of every task."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    subject, body = failure_message(context)
    _LOGGER.error("%s: %s", subject, body)
    recipients = _recipients()
    if recipients:
        SmtpNotifier(to=list(recipients), subject=subject, html_content=body).notify(context)


async def deadline_missed(context: dict[str, Any], **_: Any) -> None:
    """The DAG's deadline callback; runs in the triggerer."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    subject, body = deadline_message(context)
    _LOGGER.error("%s: %s", subject, body)
    recipients = _recipients()
    if recipients:
        await SmtpNotifier(to=list(recipients), subject=subject, html_content=body).async_notify(context)
