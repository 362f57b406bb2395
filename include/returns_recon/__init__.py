"""Returns reconciliation across Reveni, Cin7 Core and Sitoo.

Plain, typed functions with explicit inputs (the body of every DAG task is in ``returns_recon.steps``);
no Airflow import is needed to use or test anything here except the thin glue in
``returns_recon.orchestration``.
"""

__version__ = "0.1.0"
