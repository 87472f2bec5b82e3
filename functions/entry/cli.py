"""gke-node-drainer: the command-line tool (also ``python -m functions``).

  explain FILE|-     what the node-event function would decide about a LogEntry, a Pub/Sub message
                     or an Eventarc CloudEvent: offline, no cluster, no credentials
  status             the nodes the drainer cordoned, and what recovery will do next
  drain NODE         a graceful manual drain (--dry-run to see the plan; --force: force what is left
                     once the VM is verified off)
  uncordon NODE      lift the drainer's own cordon (--force also one from before it; --untaint also
                     the drainer's out-of-service taint)
  cleanup            clean up finished Jobs now (--dry-run to list them)
  worker             pull the log-sink subscription and drain nodes (worker mode)

status, drain, uncordon and cleanup call the deployed manual function (--url or DRAINER_MANUAL_URL)
with a Google ID token for its audience, minted from your own credentials.

exit codes: 0 ok; 1 the operation failed or found problems (an incomplete drain, a malformed
event, a refused uncordon); 2 usage or configuration error; 3 authentication (no credentials, the
function answered 401 or 403); 4 the function or the cluster could not be reached (connection, 5xx).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from enum import IntEnum
from typing import IO, TYPE_CHECKING, Any, NoReturn

from functions import __version__
from functions.decisions.settings import MAX_DEADLINE, ConfigError
from functions.decisions.times import parse_rfc3339
from functions.entry import explain as explaining

if TYPE_CHECKING:
    from functions.gateways.manual_function import Answer

PROG = "gke-node-drainer"
ENV_URL = "DRAINER_MANUAL_URL"
HTTP_MARGIN = 60.0  # seconds the CLI waits beyond the drain's own deadline
WORKER_GRACE_SECONDS = 150.0
TABLE_HIDDEN = frozenset({"age_seconds"})  # JSON only: the table shows the age in words
WORKER_HELP = """Pull-worker mode: the node-event handler, fed by a streaming pull of the log-sink subscription.

For clusters the functions cannot reach (private endpoints) or automation outside Cloud Functions.
Handled and permanently bad messages are acked, transient failures nacked (Pub/Sub redelivers).
On SIGTERM or SIGINT the worker stops pulling and lets in-flight drains finish within a grace
period, then exits (0 when they finished, 2 when the grace period ran out, 1 when the pull failed).
"""


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    AUTH = 3
    UNREACHABLE = 4


class Failure(Exception):
    """Stop the command: ``message`` goes to stderr, ``code`` is the exit status."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code


# ----------------------------------------------------------------------------------------- output
def _say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def _text(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return " ".join(str(value).split())


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; the last column is never padded."""
    cells = [[h.upper() for h in headers], *[[_text(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)) + "  " + r[-1] for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def pairs(items: Sequence[tuple[str, Any]]) -> str:
    width = max((len(k) for k, _ in items), default=0)
    return "\n".join(f"{k.ljust(width)}  {_text(v)}" for k, v in items)


def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _json(value: Any) -> None:
    _emit(json.dumps(value, indent=2, default=str))


class Progress:
    """An elapsed-time spinner on stderr while a call runs (a single line when stderr is no TTY)."""

    FRAMES = "|/-\\"

    def __init__(self, label: str, stream: IO[str] | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        self.started = time.monotonic()
        if self.stream.isatty():
            self._thread = threading.Thread(target=self._spin, name="progress", daemon=True)
            self._thread.start()
        else:
            print(f"{PROG}: {self.label} ...", file=self.stream, flush=True)
        return self

    def _spin(self) -> None:
        frame = 0
        while not self._done.wait(0.1):
            elapsed = time.monotonic() - self.started
            self.stream.write(f"\r{self.FRAMES[frame % 4]} {self.label}  {elapsed:5.1f} s")
            self.stream.flush()
            frame += 1

    def __exit__(self, *_: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
            self.stream.write("\r\033[K")
            self.stream.flush()


# ----------------------------------------------------------------------------------------- explain
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
        _json(results[0].as_dict() if len(results) == 1 else [r.as_dict() for r in results])
    else:
        shown = [[(k, v) for k, v in r.as_dict().items() if k not in TABLE_HIDDEN] for r in results]
        _emit("\n\n".join(pairs(items) for items in shown))
    malformed = [r for r in results if r.verdict is explaining.Verdict.MALFORMED]
    for r in malformed:
        _say(f"malformed: {r.fields['error']}")
    return ExitCode.FAILED if malformed else ExitCode.OK


# ----------------------------------------------------------------------------------------- remote
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
        _json(answer)
        return ExitCode.OK
    rows = answer.get("nodes") or []
    if not rows:
        _emit(f"no node is cordoned by {PROG}")
        return ExitCode.OK
    _emit(
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
        _json(answer)
    else:
        counts = ", ".join(f"{n} {k}" for k, n in sorted((answer.get("counts") or {}).items())) or "no pods"
        _emit(
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
            _emit("")
            _emit(
                table(
                    ["pod", "result", "pdb", "reason"],
                    [[p.get("pod"), p.get("result"), p.get("pdb"), p.get("reason")] for p in pods],
                )
            )
    if outcome == "incomplete":
        remaining = answer.get("remaining") or []
        blocked = sorted({b["pdb"] for b in answer.get("blocked") or [] if b.get("pdb")})
        why = f"; blocked by PodDisruptionBudget {', '.join(blocked)}" if blocked else ""
        _say(f"drain incomplete: {len(remaining)} pods still on {args.node} at the deadline{why}")
        return ExitCode.FAILED
    return ExitCode.OK


def cmd_uncordon(args: argparse.Namespace) -> ExitCode:
    body = {"action": "uncordon", "node": args.node, "dry_run": args.dry_run, "force": args.force}
    if args.untaint:
        body["untaint"] = True
    answer = call(args, _with_cluster(body, args), timeout=HTTP_MARGIN * 2)
    if args.output == "json":
        _json(answer)
    else:
        keys = ("node", "cluster", "action", "result", "reason", "dry_run")
        _emit(pairs([(k, answer.get(k)) for k in keys]))
    return ExitCode.OK


def cmd_cleanup(args: argparse.Namespace) -> ExitCode:
    body = _with_cluster({"action": "cleanup", "dry_run": args.dry_run}, args)
    label = "listing finished Jobs" if args.dry_run else "cleaning up finished Jobs"
    answer = call(args, body, timeout=MAX_DEADLINE + HTTP_MARGIN, progress=label)
    reports = answer.get("clusters") or []
    if args.output == "json":
        _json(answer)
    else:
        _emit(
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
            _say(f"cleanup error in {r.get('cluster')}: {_text(error)}")
            failed = True
        if r.get("complete") is False:
            _say(f"cleanup of {r.get('cluster')} ran out of its time budget: the next run resumes")
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


# ----------------------------------------------------------------------------------------- parser
def _moment(text: str) -> datetime:
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time such as 2026-10-02T08:14:07Z: {exc}") from None


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 1 <= value <= MAX_DEADLINE:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_DEADLINE:g} seconds")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    output = _Parser(add_help=False)
    output.add_argument("-o", "--output", choices=("table", "json"), default="table", help="output format")
    remote = _Parser(add_help=False)
    group = remote.add_argument_group("calling the manual function")
    group.add_argument("--url", help=f"the manual function's trigger URL (default: ${ENV_URL})")
    group.add_argument(
        "--audience", help="the ID token's audience: the function's DRAINER_HTTP_AUDIENCE (default: the URL)"
    )
    auth = group.add_mutually_exclusive_group()
    auth.add_argument(
        "--impersonate-service-account",
        metavar="EMAIL",
        help="mint the ID token as this service account (needs roles/iam.serviceAccountTokenCreator on it)",
    )
    auth.add_argument("--no-auth", action="store_true", help="send no token (a local function without an audience)")
    cluster = _Parser(add_help=False)
    cluster.add_argument("--cluster", help="the cluster's name in DRAINER_CLUSTERS (required when there are several)")
    dry_run = _Parser(add_help=False)
    dry_run.add_argument("--dry-run", action="store_true", help="plan and audit, change nothing")

    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def add(name: str, help_text: str, *parents: _Parser) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text, parents=[*parents])

    explain = add("explain", "what the node-event function would decide about an event (offline)", output)
    explain.add_argument("file", metavar="FILE", help="a JSON LogEntry, Pub/Sub message or CloudEvent; - for stdin")
    explain.add_argument(
        "--at",
        type=_moment,
        metavar="TIME",
        help="judge as of this RFC 3339 time (e.g. when a dead letter first arrived); default: now",
    )
    explain.set_defaults(run=cmd_explain)

    status = add("status", "the nodes the drainer cordoned and what recovery does next", output, remote, cluster)
    status.set_defaults(run=cmd_status)

    drain = add(
        "drain",
        "drain a node now: cordon, evict honouring PDBs; forced only with --force, and only once its VM is off",
        output,
        remote,
        cluster,
        dry_run,
    )
    drain.add_argument(
        "--force",
        action="store_true",
        help="once the VM is verified off (Compute Engine, or the Node rule when it cannot answer), taint the node "
        "out of service and force-delete what is left; while the VM may run, nothing is forced",
    )
    drain.add_argument("node", metavar="NODE", help="the Kubernetes node name (the VM instance name)")
    drain.add_argument(
        "--timeout",
        type=_positive,
        metavar="S",
        help="seconds the drain may take (default: the function's delete deadline)",
    )
    drain.set_defaults(run=cmd_drain)

    uncordon = add("uncordon", "lift the drainer's own cordon of a node", output, remote, cluster, dry_run)
    uncordon.add_argument("node", metavar="NODE", help="the Kubernetes node name")
    uncordon.add_argument("--force", action="store_true", help="also lift a cordon that was there before the drainer's")
    uncordon.add_argument(
        "--untaint",
        action="store_true",
        help="also remove the drainer's out-of-service taint (refused without it: check the VM runs again first)",
    )
    uncordon.set_defaults(run=cmd_uncordon)

    cleanup = add(
        "cleanup", "delete finished Jobs (and their pods) past their TTL now", output, remote, cluster, dry_run
    )
    cleanup.set_defaults(run=cmd_cleanup)

    worker = commands.add_parser(
        "worker",
        help="pull the log-sink subscription and drain nodes (worker mode)",
        description=WORKER_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument("--subscription", required=True, help="projects/PROJECT/subscriptions/NAME")
    worker.add_argument("--max-messages", type=int, default=8, help="messages handled at once (flow control)")
    worker.add_argument(
        "--grace-seconds",
        type=float,
        default=WORKER_GRACE_SECONDS,
        help="how long in-flight drains may run after SIGTERM",
    )
    worker.add_argument(
        "--retry-backoff-seconds",
        type=float,
        default=None,
        help="first wait before a message that failed transiently is redelivered (default 10); doubles per attempt, "
        "at most 600",
    )
    worker.set_defaults(run=lambda args: cmd_worker(args, worker))
    return parser


@contextlib.contextmanager
def _interrupts() -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        _say("interrupted (a drain already requested goes on in the function; see status)")
        raise SystemExit(130) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        with _interrupts():
            return int(run(args))
    except Failure as exc:
        _say(str(exc))
        return int(exc.code)
    except ConfigError as exc:
        _say(f"configuration error: {exc}")
        return int(ExitCode.USAGE)
