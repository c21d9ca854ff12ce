"""Helpers of the beam-ecommerce DAGs: settings from Airflow Variables, the launch plan, alerts.

They live beside the DAG files (Airflow puts the DAGs folder on ``sys.path``) and import
nothing from ``beam_ecommerce``: Airflow and the pipelines run in different environments.
"""
