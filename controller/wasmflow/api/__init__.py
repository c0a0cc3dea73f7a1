"""Pydantic models of the custom resources: the single source of the CRD schemas."""
