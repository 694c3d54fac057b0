"""``xnatnode subscribe`` against xnatsim: the Event Service is turned on, the wrapper enabled, and
one SessionEvent/CREATED subscription with the project and payload filters is made (once)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from xnatnode.cli import main
from xnatsim.testing import Server, running_server

from tests.xnat_env import point_xnatnode_at

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def xnatsim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("lv-subscribe")) as server:
        yield server


@pytest.fixture
def http(xnatsim_server: Server, monkeypatch: pytest.MonkeyPatch) -> requests.Session:
    point_xnatnode_at(xnatsim_server, monkeypatch)
    return xnatsim_server.session()


def test_subscribe_creates_one_subscription(xnatsim_server: Server, http: requests.Session,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    url = xnatsim_server.url
    doc = json.loads((REPO / "command-json" / "label-validation.json").read_text("utf-8"))[0]
    r = http.post(f"{url}/xapi/commands", json=doc)
    assert r.status_code in (200, 201), r.text
    assert http.put(f"{url}/data/projects/LVSUB", params={"xsiType": "xnat:projectData"}).status_code == 200
    assert http.get(f"{url}/xapi/events/prefs").json() == {"enabled": False}
    argv = ["subscribe", "--project", "LVSUB", "--filter", "'MR' in @.modalities-in-study",
            "--attribute", "fail-on=error"]
    assert main(argv) == 0
    assert http.get(f"{url}/xapi/events/prefs").json() == {"enabled": True}
    printed = json.loads(capsys.readouterr().out)
    subs = http.get(f"{url}/xapi/projects/LVSUB/events/subscriptions").json()
    assert len(subs) == 1
    sub = subs[0]
    assert str(sub["id"]) == printed["id"]
    wrapper = next(w for c in http.get(f"{url}/xapi/commands").json() for w in c["xnat"]
                   if w["name"] == "label-validation-session")
    assert sub["action-key"] == f"org.nrg.containers.services.CommandActionProvider:{wrapper['id']}"
    assert sub["event-filter"]["event-type"] == "org.nrg.xnat.eventservice.events.SessionEvent"
    assert sub["event-filter"]["status"] == "CREATED"
    assert sub["event-filter"]["project-ids"] == ["LVSUB"]
    assert sub["event-filter"]["payload-filter"] == "'MR' in @.modalities-in-study"
    assert sub["attributes"] == {"fail-on": "error"}
    assert http.get(f"{url}/xapi/projects/LVSUB/wrappers/{wrapper['id']}/enabled").json()["enabled-for-project"]
    # a second run replaces it rather than adding another
    assert main(argv) == 0
    assert len(http.get(f"{url}/xapi/projects/LVSUB/events/subscriptions").json()) == 1


def test_subscribe_unknown_wrapper(xnatsim_server: Server, http: requests.Session,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["subscribe", "--project", "LVSUB", "--wrapper", "no-such-wrapper"]) == 5
    assert "no wrapper 'no-such-wrapper'" in capsys.readouterr().err


def test_dry_run_sends_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["subscribe", "--project", "P1", "--dry-run"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["event-filter"] == {"event-type": "org.nrg.xnat.eventservice.events.SessionEvent",
                                    "status": "CREATED", "project-ids": ["P1"]}
