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
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import NoReturn

from functions import __version__
from functions.decisions.settings import MAX_DEADLINE, ConfigError
from functions.decisions.times import parse_rfc3339
from functions.entry.cli_commands import (
    ENV_URL,
    cmd_cleanup,
    cmd_drain,
    cmd_explain,
    cmd_status,
    cmd_uncordon,
    cmd_worker,
)
from functions.entry.cli_output import PROG, ExitCode, Failure, say

WORKER_GRACE_SECONDS = 150.0
WORKER_HELP = """Pull-worker mode: the node-event handler, fed by a streaming pull of the log-sink subscription.

For clusters the functions cannot reach (private endpoints) or automation outside Cloud Functions.
Handled and permanently bad messages are acked, transient failures nacked (Pub/Sub redelivers).
On SIGTERM or SIGINT the worker stops pulling and lets in-flight drains finish within a grace
period, then exits (0 when they finished, 2 when the grace period ran out, 1 when the pull failed).
"""


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
        say("interrupted (a drain already requested goes on in the function; see status)")
        raise SystemExit(130) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        with _interrupts():
            return int(run(args))
    except Failure as exc:
        say(str(exc))
        return int(exc.code)
    except ConfigError as exc:
        say(f"configuration error: {exc}")
        return int(ExitCode.USAGE)
