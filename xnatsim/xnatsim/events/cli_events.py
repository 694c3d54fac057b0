"""``python -m xnatsim events``: subscribe a wrapper to "session archived", list subscriptions, history."""

from __future__ import annotations

import argparse
import sys

NAME = "events"
HELP = "Event Service: subscribe a wrapper to session/scan events, list subscriptions, delivery history"

_EVENTS = {"session": "org.nrg.xnat.eventservice.events.SessionEvent",
           "scan": "org.nrg.xnat.eventservice.events.ScanEvent"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from xnatsim.cs.cli_common import add_connection_arguments

    sub = parser.add_subparsers(dest="action", required=True)
    subscribe = sub.add_parser("subscribe", help="launch WRAPPER whenever a session (or scan) is created")
    subscribe.add_argument("wrapper", help="wrapper id or name")
    subscribe.add_argument("--project", action="append", default=[], help="only in this project (repeatable)")
    subscribe.add_argument("--event", choices=sorted(_EVENTS), default="session")
    subscribe.add_argument("--status", default="CREATED", help="event status (default CREATED)")
    subscribe.add_argument("--filter", help="payload filter, e.g. '\"MR\" in @.modalities-in-study'")
    subscribe.add_argument("--attribute", action="append", default=[], metavar="NAME=VALUE",
                           help="value for another input (repeatable)")
    subscribe.add_argument("--act-as-event-user", action="store_true", help="run as the user who caused the event")
    subscribe.add_argument("--name", help="subscription name (default: derived)")
    add_connection_arguments(subscribe)
    listing = sub.add_parser("list", help="subscriptions")
    add_connection_arguments(listing)
    history = sub.add_parser("history", help="deliveries: what fired, what was filtered out")
    add_connection_arguments(history)


def run(args: argparse.Namespace) -> int:
    from xnatsim.cs.cli_common import CLIError, connect
    from xnatsim.cs.cli_enable import find_wrapper
    from xnatsim.events.model import ACTION_PREFIX

    try:
        with connect(args) as client:
            if args.action == "list":
                for s in client.request("GET", "/xapi/events/subscriptions"):
                    f = s["event-filter"]
                    print(f"{s['id']}\t{s['name']}\t{'active' if s['active'] else 'inactive'}\t{s['action-key']}\t"
                          f"{f['event-type'].rsplit('.', 1)[-1]}/{f['status']}\t{','.join(f['project-ids']) or 'site'}"
                          f"\t{f.get('payload-filter') or ''}")
                return 0
            if args.action == "history":
                for d in client.request("GET", "/xapi/events/delivered"):
                    last = d["status-history"][-1]
                    print(f"{d['id']}\t{d['subscription']['name']}\t{d['trigger'].get('uri')}\t{last['status']}\t"
                          f"container {d.get('container-id') or '-'}\t{last.get('message') or ''}")
                return 0
            attributes = {}
            for item in args.attribute:
                name, sep, value = item.partition("=")
                if not sep:
                    raise CLIError(f"--attribute needs NAME=VALUE, not {item!r}", 2)
                attributes[name] = value
            wid, _command = find_wrapper(client, args.wrapper)
            if not client.request("GET", "/xapi/events/prefs").get("enabled"):
                client.request("PUT", "/xapi/events/prefs", body={"enabled": True})
                print("Event Service enabled")
            event_filter = {"event-type": _EVENTS[args.event], "status": args.status, "project-ids": args.project}
            if args.filter:
                event_filter["payload-filter"] = args.filter
            body = {"name": args.name or f"wrapper {wid} on {args.event} {args.status.lower()}", "active": True,
                    "action-key": f"{ACTION_PREFIX}{wid}", "attributes": attributes,
                    "act-as-event-user": args.act_as_event_user, "event-filter": event_filter}
            path = (f"/xapi/projects/{args.project[0]}/events/subscription" if len(args.project) == 1
                    else "/xapi/events/subscription")
            created = client.request("POST", path, body=body)  # XNAT answers "<name>:<id>"
            print(f"subscription {str(created).rsplit(':', 1)[-1]}: {body['name']}")
            return 0
    except CLIError as exc:
        print(exc, file=sys.stderr)
        return exc.status
