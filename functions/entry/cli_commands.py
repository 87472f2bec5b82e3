"""The commands of the command-line tool: ``explain`` (offline), ``status``, ``drain``,
``uncordon`` and ``cleanup`` (each a call to the deployed manual function), and ``worker``.
Each returns an :class:`~functions.entry.cli_output.ExitCode` or raises a
:class:`~functions.entry.cli_output.Failure`; the parser is :mod:`functions.entry.cli`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from functions.decisions.settings import MAX_DEADLINE, ConfigError
from functions.entry import explain as explaining
from functions.entry.cli_output import PROG, ExitCode, Failure, Progress, cell, emit, pairs, print_json, say, table

if TYPE_CHECKING:
    from functions.gateways.manual_function import Answer

ENV_URL = "DRAINER_MANUAL_URL"
HTTP_MARGIN = 60.0  # seconds the CLI waits beyond the drain's own deadline
TABLE_HIDDEN = frozenset({"age_seconds"})  # JSON only: the table shows the age in words


def cmd_explain(args: argparse.Namespace) -> ExitCode:
    try:
        if args.file == "-":
            raw = sys.stdin.buffer.read(explaining.MAX_INPUT_BYTES + 1)
        else:
            with open(args.file, "rb") as handle:
                raw = handle.read(explaining.MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise Failure(ExitCode.USAGE, f"cannot read {args.file}: {exc.strerror or exc}") from None
    try:
        config = explaining.explain_settings(os.environ)
    except ConfigError as exc:
        raise Failure(ExitCode.USAGE, f"configuration error: {exc}") from None
    results = explaining.explain(raw, config=config, env=os.environ, now=args.at or datetime.now(UTC))
    if args.output == "json":
        print_json(results[0].as_dict() if len(results) == 1 else [r.as_dict() for r in results])
    else:
        shown = [[(k, v) for k, v in r.as_dict().items() if k not in TABLE_HIDDEN] for r in results]
        emit("\n\n".join(pairs(items) for items in shown))
    malformed = [r for r in results if r.verdict is explaining.Verdict.MALFORMED]
    for r in malformed:
        say(f"malformed: {r.fields['error']}")
    return ExitCode.FAILED if malformed else ExitCode.OK


def _url(args: argparse.Namespace) -> str:
    url = args.url or os.environ.get(ENV_URL, "").strip()
    if not url:
        raise Failure(
            ExitCode.USAGE, f"no function URL: pass --url URL or set {ENV_URL} (the manual function's trigger URL)"
        )
    if not url.startswith(("https://", "http://")):
        raise Failure(ExitCode.USAGE, f"--url must be an http(s) URL, got {url!r}")
    return url


def _answer_failure(answer: Answer, url: str, audience: str | None) -> Failure:
    """The exit code and a message that says what to fix, for an answer other than 200."""
    said = f"the function answered {answer.status}: {answer.error}"
    if answer.status == 401:
        hint = (
            "it wants a Google ID token: do not pass --no-auth"
            if audience is None
            else f"the token (audience {audience}) was refused: --audience must equal the function's "
            "DRAINER_HTTP_AUDIENCE (by default the URL)"
        )
        return Failure(ExitCode.AUTH, f"{said} ({hint})")
    if answer.status == 403:
        return Failure(
            ExitCode.AUTH,
            f"{said} (your identity may not call it: it needs roles/cloudfunctions.invoker or run.invoker and, "
            "when DRAINER_ALLOWED_CALLERS is set, to be listed there)",
        )
    if answer.status == 400:
        return Failure(ExitCode.USAGE, said)
    if answer.status == 409 and "untaint=true" in answer.error:
        return Failure(ExitCode.FAILED, f"{said} (with this tool: --untaint)")
    if answer.status == 409 and "force" in answer.error:
        return Failure(ExitCode.FAILED, f"{said} (with this tool: --force)")
    if answer.status >= 500:
        return Failure(ExitCode.UNREACHABLE, said)
    if answer.status == 404 and not answer.is_json:
        return Failure(ExitCode.FAILED, f"{said} (is {url} the manual function's URL?)")
    return Failure(ExitCode.FAILED, said)


def call(
    args: argparse.Namespace, body: dict[str, Any], *, timeout: float, progress: str | None = None
) -> dict[str, Any]:
    # google-auth and requests load only for the commands that call the function (explain stays quick)
    from functions.gateways import manual_function
    from functions.gateways.manual_function import CredentialsError, Unreachable

    url = _url(args)
    audience = None if args.no_auth else (args.audience or url)
    token = None
    if audience is not None:
        try:
            token = manual_function.id_token(audience=audience, impersonate=args.impersonate_service_account)
        except CredentialsError as exc:
            raise Failure(ExitCode.AUTH, str(exc)) from None
    progress_context = Progress(progress) if progress else contextlib.nullcontext()
    try:
        with progress_context:
            answer = manual_function.post(url, body, token=token, timeout=timeout)
    except Unreachable as exc:
        raise Failure(ExitCode.UNREACHABLE, f"the function could not be reached: {exc}") from None
    if answer.status != 200:
        raise _answer_failure(answer, url, audience)
    if not answer.is_json or not isinstance(answer.body, dict):
        raise Failure(
            ExitCode.FAILED, f"{url} answered 200 but not with a JSON object: is it the manual function's URL?"
        )
    return answer.body


def _with_cluster(body: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    if args.cluster:
        body["cluster"] = args.cluster
    return body


def cmd_status(args: argparse.Namespace) -> ExitCode:
    answer = call(args, _with_cluster({"action": "status"}, args), timeout=HTTP_MARGIN * 2)
    if args.output == "json":
        print_json(answer)
        return ExitCode.OK
    rows = answer.get("nodes") or []
    if not rows:
        emit(f"no node is cordoned by {PROG}")
        return ExitCode.OK
    emit(
        table(
            ["node", "cluster", "reason", "cordoned at", "ready", "next", "why"],
            [[r.get(k) for k in ("node", "cluster", "reason", "cordoned_at", "ready", "next", "why")] for r in rows],
        )
    )
    return ExitCode.OK


def cmd_drain(args: argparse.Namespace) -> ExitCode:
    body: dict[str, Any] = {"action": "drain", "node": args.node, "dry_run": args.dry_run}
    if args.force:
        body["force"] = True
    if args.timeout is not None:
        body["timeout_seconds"] = args.timeout
    wait = (args.timeout or MAX_DEADLINE) + HTTP_MARGIN
    verb = "planning the drain of" if args.dry_run else "draining"
    answer = call(args, _with_cluster(body, args), timeout=wait, progress=f"{verb} {args.node}")
    outcome = answer.get("outcome")
    if args.output == "json":
        print_json(answer)
    else:
        counts = ", ".join(f"{n} {k}" for k, n in sorted((answer.get("counts") or {}).items())) or "no pods"
        emit(
            pairs(
                [
                    ("node", answer.get("node")),
                    ("cluster", answer.get("cluster")),
                    ("outcome", outcome),
                    ("cordoned", answer.get("cordoned")),
                    ("pods", counts),
                    ("duration", f"{answer.get('duration_seconds', 0):g} s"),
                    ("note", answer.get("note")),
                ]
            )
        )
        pods = answer.get("pods") or []
        if pods:
            emit("")
            emit(
                table(
                    ["pod", "result", "pdb", "reason"],
                    [[p.get("pod"), p.get("result"), p.get("pdb"), p.get("reason")] for p in pods],
                )
            )
    if outcome == "incomplete":
        remaining = answer.get("remaining") or []
        blocked = sorted({b["pdb"] for b in answer.get("blocked") or [] if b.get("pdb")})
        why = f"; blocked by PodDisruptionBudget {', '.join(blocked)}" if blocked else ""
        say(f"drain incomplete: {len(remaining)} pods still on {args.node} at the deadline{why}")
        return ExitCode.FAILED
    return ExitCode.OK


def cmd_uncordon(args: argparse.Namespace) -> ExitCode:
    body = {"action": "uncordon", "node": args.node, "dry_run": args.dry_run, "force": args.force}
    if args.untaint:
        body["untaint"] = True
    answer = call(args, _with_cluster(body, args), timeout=HTTP_MARGIN * 2)
    if args.output == "json":
        print_json(answer)
    else:
        keys = ("node", "cluster", "action", "result", "reason", "dry_run")
        emit(pairs([(k, answer.get(k)) for k in keys]))
    return ExitCode.OK


def cmd_cleanup(args: argparse.Namespace) -> ExitCode:
    body = _with_cluster({"action": "cleanup", "dry_run": args.dry_run}, args)
    label = "listing finished Jobs" if args.dry_run else "cleaning up finished Jobs"
    answer = call(args, body, timeout=MAX_DEADLINE + HTTP_MARGIN, progress=label)
    reports = answer.get("clusters") or []
    if args.output == "json":
        print_json(answer)
    else:
        emit(
            table(
                ["cluster", "jobs deleted", "pods deleted", "jobs seen", "complete", "duration", "kept", "errors"],
                [
                    [
                        r.get("cluster"),
                        r.get("deleted_jobs"),
                        r.get("deleted_pods"),
                        r.get("jobs_seen"),
                        r.get("complete"),
                        f"{r.get('duration_seconds', 0):g} s",
                        ", ".join(f"{n} {k}" for k, n in sorted((r.get("kept") or {}).items())),
                        len(r.get("errors") or []),
                    ]
                    for r in reports
                ],
            )
        )
    failed = False
    for r in reports:
        for error in r.get("errors") or []:
            say(f"cleanup error in {r.get('cluster')}: {cell(error)}")
            failed = True
        if r.get("complete") is False:
            say(f"cleanup of {r.get('cluster')} ran out of its time budget: the next run resumes")
    return ExitCode.FAILED if failed else ExitCode.OK


def cmd_worker(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.subscription.startswith("projects/") or "/subscriptions/" not in args.subscription:
        parser.error("--subscription must be projects/PROJECT/subscriptions/NAME")
    from functions.entry import worker  # the worker's dependencies (Kubernetes, Pub/Sub) load only for it

    return worker.serve(
        subscription=args.subscription,
        max_messages=args.max_messages,
        grace=args.grace_seconds,
        retry_backoff=args.retry_backoff_seconds,
    )
