"""The exception workbench: the queue, an exception's page and a person's actions, served in the Airflow UI by
the plugin ``plugins/returns_recon_workbench.py`` (docs/workbench.md)."""
