"""Metabase as code: the starter dashboard on the BigQuery marts, provisioned through the REST API.

``python -m beam_ecommerce.metabase --help`` runs it; ``spec`` says what is provisioned,
``provision`` makes a Metabase match it, ``client`` talks to the API.
"""

from beam_ecommerce.metabase.client import MetabaseClient, MetabaseError
from beam_ecommerce.metabase.provision import Report, provision
from beam_ecommerce.metabase.spec import BigQueryConnection

__all__ = ["BigQueryConnection", "MetabaseClient", "MetabaseError", "Report", "provision"]
