"""``xnatnode subscribe``: make XNAT run a command's wrapper by itself when a session is archived.

One command does what the README's on-archive steps describe (reference label-validation.md §3):

1. turn the Event Service on if it is off (``PUT /xapi/events/prefs {"enabled": true}``; it is
   off on a fresh XNAT; site administrators only);
2. find the wrapper by name or ID (``GET /xapi/commands``) and enable it on the site and the
   project when it is not;
3. create (or, when one of the same name exists, replace) the Event Service subscription:
   ``SessionEvent``/``CREATED``, the project filter, an optional payload filter, and the action
   key ``org.nrg.containers.services.CommandActionProvider:<wrapper id>``; through the project
   route (project owners may do this) unless ``--site``.

``--dry-run`` prints the subscription JSON without sending anything.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xnatnode.labels import project_id
from xnatnode.settings import add_connection_arguments, flag, load_settings

if TYPE_CHECKING:
    from xnatnode.client import Connection

NAME = "subscribe"
HELP = ("Run a wrapper (default: label-validation-session) whenever a session is archived in a "
        "project: enable the Event Service and create its subscription.")

SESSION_EVENT = "org.nrg.xnat.eventservice.events.SessionEvent"
ACTION_PROVIDER = "org.nrg.containers.services.CommandActionProvider"
DEFAULT_WRAPPER = "label-validation-session"


def _attribute(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value


@dataclass(frozen=True)
class Options:
    """subscribe's own flags."""

    project: str
    wrapper: str
    filter: str | None
    attribute: list[tuple[str, str]]
    name: str | None
    act_as_event_user: bool
    site: bool
    dry_run: bool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flag(parser, "--project", required=True, type=project_id, metavar="ID",
         help="the project whose archived sessions trigger the wrapper")
    flag(parser, "--wrapper", default=DEFAULT_WRAPPER, metavar="NAME_OR_ID",
         help="wrapper name or ID")
    flag(parser, "--filter", metavar="EXPR",
         help="payload filter, a JSONPath predicate on the session, e.g. "
         "'\"MR\" in @.modalities-in-study' (default: every session)")
    flag(parser, "--attribute", type=_attribute, action="append", default=[], metavar="NAME=VALUE",
         help="value of another wrapper input, e.g. fail-on=error (repeatable)")
    flag(parser, "--name", help="subscription name (default: '<wrapper> on archive in <project>')")
    flag(parser, "--act-as-event-user", action="store_true",
         help="launch as the user who archived the session (default: as you)")
    flag(parser, "--site", action="store_true",
         help="create it through the site route (administrators) instead of the project route "
         "(project owners)")
    flag(parser, "--dry-run", action="store_true", help="print the subscription JSON and send nothing")
    add_connection_arguments(parser)


def subscription_body(*, name: str, wrapper_id: int | str, project: str, payload_filter: str | None,
                      attributes: dict[str, str], act_as_event_user: bool) -> dict[str, object]:
    """The Event Service subscription document (``SubscriptionCreator`` fields)."""
    event_filter: dict[str, object] = {"event-type": SESSION_EVENT, "status": "CREATED",
                                       "project-ids": [project]}
    if payload_filter:
        event_filter["payload-filter"] = payload_filter
    return {"name": name, "active": True, "action-key": f"{ACTION_PROVIDER}:{wrapper_id}",
            "act-as-event-user": act_as_event_user, "attributes": attributes,
            "event-filter": event_filter}


def created_id(text: str) -> str:
    """The subscription ID from XNAT's 201 answer (``"<name>:<id>"``, or a JSON document)."""
    import json

    try:
        doc = json.loads(text)
    except ValueError:
        doc = text
    if isinstance(doc, dict):
        return str(doc.get("id", ""))
    return str(doc).strip().strip('"').rsplit(":", 1)[-1]


def run(args: argparse.Namespace) -> int:
    import json
    import logging
    import sys

    from xnatnode.client import connect_with
    from xnatnode.errors import XnatError
    from xnatnode.logs import remove_logging, setup_logging
    from xnatnode.runtime import ExitCode, exit_code_for

    settings = load_settings(args, Options)
    opts = settings.command
    assert settings.connection is not None
    log = logging.getLogger("xnatnode.subscribe")
    handler = setup_logging("INFO")
    attributes = dict(opts.attribute)
    try:
        if opts.dry_run:
            body = subscription_body(name=opts.name or f"{opts.wrapper} on archive in {opts.project}", wrapper_id="<wrapper id>", project=opts.project,
                                     payload_filter=opts.filter, attributes=attributes,
                                     act_as_event_user=bool(opts.act_as_event_user))
            print(json.dumps(body, indent=2))
            return int(ExitCode.OK)
        with connect_with(settings.connection) as conn:
            wrapper_id, wrapper_name = _find_wrapper(conn, opts.wrapper)
            name = opts.name or f"{wrapper_name} on archive in {opts.project}"
            if not conn.get_json("/xapi/events/prefs").get("enabled"):
                _send_json(conn, "PUT", "/xapi/events/prefs", {"enabled": True})
                log.info("Event Service enabled (it was off)")
            for scope in ("/xapi", f"/xapi/projects/{opts.project}"):
                state = conn.get_json(f"{scope}/wrappers/{wrapper_id}/enabled")
                # the site answers true/false; a project {"enabled-for-project": …, …}
                if isinstance(state, dict):
                    state = state.get("enabled-for-project")
                if state is not True:
                    conn.put(f"{scope}/wrappers/{wrapper_id}/enabled")
                    log.info("wrapper %s enabled on %s", wrapper_id,
                             "the site" if scope == "/xapi" else f"project {opts.project}")
            body = subscription_body(name=name, wrapper_id=wrapper_id, project=opts.project,
                                     payload_filter=opts.filter, attributes=attributes,
                                     act_as_event_user=bool(opts.act_as_event_user))
            base = "/xapi/events" if opts.site else f"/xapi/projects/{opts.project}/events"
            existing = [s for s in conn.get_json(f"{base}/subscriptions") if s.get("name") == name]
            if existing:
                sub_id = str(existing[0]["id"])
                _send_json(conn, "PUT", f"{base}/subscription/{sub_id}", body)
                log.info("subscription %s (%r) replaced", sub_id, name)
            else:
                sub_id = created_id(_send_json(conn, "POST", f"{base}/subscription", body))
                log.info("subscription %s (%r) created", sub_id, name)
            print(json.dumps({"id": sub_id, **body}, indent=2))
            return int(ExitCode.OK)
    except XnatError as exc:
        print(f"subscribe: {exc}", file=sys.stderr)
        return int(exit_code_for(exc))
    finally:
        remove_logging(handler)


def _send_json(conn: Connection, method: str, path: str, body: object) -> str:
    import json

    response = conn.request(method, path, data=json.dumps(body),
                            headers={"Content-Type": "application/json"})
    return response.text


def _find_wrapper(conn: Connection, ref: str) -> tuple[int, str]:
    from xnatnode.errors import NotFound

    for command in conn.get_json("/xapi/commands"):
        for wrapper in command.get("xnat") or []:
            if str(wrapper.get("id")) == ref or wrapper.get("name") == ref:
                return int(wrapper["id"]), str(wrapper["name"])
    raise NotFound(f"no wrapper {ref!r} in XNAT: add the command first (xnatnode register)")
