"""Warehouse access: connections, migrations, bulk loading."""
