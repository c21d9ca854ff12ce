"""Pseudonymization of PII with a keyed hash (HMAC-SHA256).

The same key maps the same e-mail to the same token, so analysts can still count
and join users; without the key the token cannot be reversed or recomputed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys

from apache_beam.utils.secret import GcpSecret, Secret

PII_KEY_ENV = "BEAM_ECOMMERCE_PII_KEY"
# Only for the local demo: a key that is public is no secret.
LOCAL_DEV_KEY = "beam-ecommerce-local-dev-key"
DEV_KEY_WARNING = (
    f"WARNING: no PII hash key given (--pii_hash_key, --pii_hash_key_secret or ${PII_KEY_ENV}): "
    "hashing PII with the public development key, so the tokens are not secret."
)
# 128 bits: the HMAC's key must not be guessable.
MIN_KEY_BYTES = 16


class PiiKeyError(ValueError):
    """The PII hash key asked for cannot protect anything: too short, or given twice."""


def resolve_pii_key(explicit: str | None, secret_version: str | None = None) -> str | Secret:
    """The key to use: a Secret Manager version, else ``explicit``, else ``$BEAM_ECOMMERCE_PII_KEY``, else
    the public local dev key, announced by one line on stderr whatever the log level.

    A secret is returned unread: the workers read it when they start (``pii_key_text``), so the
    key itself is never part of the job's options or its serialized graph. A key given as text
    shorter than ``MIN_KEY_BYTES`` is refused: a guessable HMAC key makes the tokens reversible
    by trying every e-mail address.
    """
    if secret_version and explicit:
        raise PiiKeyError("give a PII hash key or a Secret Manager version holding it, not both")
    if secret_version:
        return GcpSecret(secret_version)
    key = explicit or os.environ.get(PII_KEY_ENV)
    if key:
        if len(key.encode("utf-8")) < MIN_KEY_BYTES:
            raise PiiKeyError(f"the PII hash key must be at least {MIN_KEY_BYTES} bytes long")
        return key
    print(DEV_KEY_WARNING, file=sys.stderr)
    return LOCAL_DEV_KEY


def pii_key_text(key: str | Secret) -> str:
    """The key's text, read from its secret store if it is a ``Secret``."""
    return key if isinstance(key, str) else key.get_str()


class _TokenMemo(dict):
    """Tokens by value, computed on a miss; ``None`` (no value) maps to ``None``: a column is one pass of look-ups."""

    def __init__(self, tokenize, size: int) -> None:
        super().__init__({None: None})
        self._tokenize = tokenize
        self._size = size

    def __missing__(self, value: str) -> str:
        if len(self) >= self._size:
            self.clear()
            self[None] = None
        token = self[value] = self._tokenize(value)
        return token


class Pseudonymizer:
    """Keyed HMAC-SHA256 of PII values, normalized first (trimmed, lower-case).

    Results are memoized: the same users and addresses recur in every batch, and a
    dictionary look-up costs a tenth of an HMAC. The memo is bounded and simply
    cleared when full, so memory stays flat on any input.
    """

    def __init__(self, key: str, memo_size: int = 200_000) -> None:
        self._base = hmac.new(key.encode("utf-8"), digestmod=hashlib.sha256)
        self._memo = _TokenMemo(self._tokenize, memo_size)

    def _tokenize(self, value: str) -> str:
        mac = self._base.copy()
        mac.update(value.strip().lower().encode("utf-8"))
        return mac.hexdigest()

    def __call__(self, value: str) -> str:
        return self._memo[value]

    def many(self, values: list[str | None]) -> list[str | None]:
        """The tokens of ``values``, ``None`` where a value is ``None``, in one pass of look-ups."""
        return list(map(self._memo.__getitem__, values))
