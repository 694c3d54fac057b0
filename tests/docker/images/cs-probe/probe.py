"""Record argv, environment, uid and mounts into /output; options steer the run.

--exit N        exit with status N (after recording)
--no-output     write nothing to /output
--call-xnat     GET $XNAT_HOST/data/projects with XNAT_USER/XNAT_PASS; record the HTTP status
--sleep S       sleep S seconds first
--write PATH    also write a file at PATH (relative to /output)
XNAT_PASS is never recorded, only whether it is set.
"""

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request

args = sys.argv[1:]


def option(name, default=None):
    return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else default


if option("--sleep"):
    time.sleep(float(option("--sleep")))
record = {
    "argv": args,
    "env": {k: ("<set>" if k == "XNAT_PASS" else v) for k, v in os.environ.items()},
    "uid": os.getuid(),
    "cwd": os.getcwd(),
}
if os.path.isdir("/input"):
    record["input"] = sorted(os.listdir("/input"))
    try:
        with open("/input/.probe-write", "w") as fh:
            fh.write("x")
        record["input_writable"] = True
    except OSError as exc:
        record["input_writable"] = False
        record["input_error"] = exc.strerror
if "--call-xnat" in args:
    auth = base64.b64encode(f"{os.environ['XNAT_USER']}:{os.environ['XNAT_PASS']}".encode()).decode()
    req = urllib.request.Request(os.environ["XNAT_HOST"] + "/xapi/containers/version",
                                 headers={"Authorization": "Basic " + auth})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            record["xnat_status"] = resp.status
    except urllib.error.HTTPError as exc:
        record["xnat_status"] = exc.code
    except OSError as exc:
        record["xnat_status"] = str(exc)
print("probe argv:", json.dumps(args))
print("probe stderr line", file=sys.stderr)
if "--no-output" not in args:
    with open("/output/probe.json", "w") as fh:
        json.dump(record, fh, indent=1)
    extra = option("--write")
    if extra:
        path = os.path.join("/output", extra)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write("extra\n")
sys.exit(int(option("--exit", "0")))
