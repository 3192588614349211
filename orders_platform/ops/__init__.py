"""Operator tools that drive a running Dagster deployment (webserver GraphQL API)."""
