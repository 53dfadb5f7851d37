"""Deployment: `make scaled` (deploy/scaled.py) and the configs it runs."""
