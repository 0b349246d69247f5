"""Ingest: read each departmental export exactly as delivered and account for every row."""
