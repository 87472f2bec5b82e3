"""Cordon and drain GKE nodes on Compute Engine events; clean up finished Jobs."""

__version__ = "0.2.0"
