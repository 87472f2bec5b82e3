"""Jobs (batch/v1): pages of Jobs, one Job by name, and its delete with its pods."""

from __future__ import annotations

from typing import Any

from functions.decisions.model import Job
from functions.gateways.kube.api import ApiBase, continue_token, scoped, seg


class JobApi(ApiBase):
    """Jobs: listed a page at a time, found by name, deleted with their pods."""

    def list_jobs(self, *, limit: int, token: str | None, namespace: str | None = None) -> tuple[list[Job], str]:
        """One page of Jobs in ``namespace`` (all namespaces when None); returns (jobs, continue token or "")."""
        body = self._json(
            "GET", scoped("/apis/batch/v1", namespace, "jobs"), query={"limit": str(limit), "continue": token}
        )
        return [Job.from_json(item) for item in body.get("items") or []], continue_token(body)

    def find_job(self, *, namespace: str, name: str) -> Job | None:
        """The Job of that name as it is now, or None (read with the list verb the cleanup has)."""
        body = self._json(
            "GET", scoped("/apis/batch/v1", namespace, "jobs"), query={"fieldSelector": f"metadata.name={name}"}
        )
        found = [Job.from_json(item) for item in body.get("items") or []]
        return found[0] if found else None

    def delete_job(self, job: Job, *, dry_run: bool = False) -> bool:
        """Delete with its pods (Background propagation) and a UID precondition; False when already gone."""
        options: dict[str, Any] = {"propagationPolicy": "Background", "preconditions": {"uid": job.uid}}
        if dry_run:
            options["dryRun"] = ["All"]
        return self._delete(f"/apis/batch/v1/namespaces/{seg(job.namespace)}/jobs/{seg(job.name)}", options)
