"""Cordon and drain GKE nodes on Compute Engine events; clean up finished Jobs."""
