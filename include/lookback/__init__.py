"""lookback: the look-back (回头看) reconciliation of the poverty registry.

The domain package. It never imports Airflow: the DAGs in ``dags/`` call into it, and so
does the ``lookback`` command line.
"""

__version__ = "0.1.0"
