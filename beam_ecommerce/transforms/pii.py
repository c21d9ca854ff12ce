"""Pseudonymization of PII with a keyed hash (HMAC-SHA256).

The same key maps the same e-mail to the same token, so analysts can still count
and join users; without the key the token cannot be reversed or recomputed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os

PII_KEY_ENV = "BEAM_ECOMMERCE_PII_KEY"
# Only for the local demo: a key that is public is no secret.
LOCAL_DEV_KEY = "beam-ecommerce-local-dev-key"

_LOGGER = logging.getLogger(__name__)


def resolve_pii_key(explicit: str | None) -> str:
    """The key to use: ``explicit``, else ``$BEAM_ECOMMERCE_PII_KEY``, else the local dev key (with a warning)."""
    key = explicit or os.environ.get(PII_KEY_ENV)
    if key:
        return key
    _LOGGER.warning("No PII hash key given (--pii_hash_key or $%s): using the public local dev key.", PII_KEY_ENV)
    return LOCAL_DEV_KEY


class Pseudonymizer:
    """Keyed HMAC-SHA256 of PII values, normalized first (trimmed, lower-case)."""

    def __init__(self, key: str) -> None:
        self._base = hmac.new(key.encode("utf-8"), digestmod=hashlib.sha256)

    def __call__(self, value: str) -> str:
        mac = self._base.copy()
        mac.update(value.strip().lower().encode("utf-8"))
        return mac.hexdigest()
