"""Scheduled exception emails, one per owner, and failure alerts for the data team."""
