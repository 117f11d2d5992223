"""Seeds a fresh `ocpoll serve` for `cargo xtask schemathesis` and writes the schemathesis configuration.

Creates three instances through the API (each with an OAuth code from the simulator's authorize step, as a
browser would get it): the one every operation addresses, one that `DELETE /instances/{id}/enabled` switches off
and one that `DELETE /instances/{id}` deletes, so that those two do not take the first away from the others. Then
waits until the first has an event with a notification, and an operational alert, so that the path parameters
of every operation name things that exist. Writes the static configuration (`schemathesis.toml` beside this
file) followed by the credentials and the path parameters found.

Standard library only: it runs in the venv that holds schemathesis, but needs nothing from it.
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def call(method, url, authorization=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if authorization:
        req.add_header("Authorization", authorization)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with OPENER.open(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def code(args):
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": args.client_id,
            "redirect_uri": args.redirect_uri,
            "scope": "full_access",
            "state": "schemathesis",
        }
    )
    sep = "&" if "?" in args.authorize_url else "?"
    status, headers, _ = call("GET", f"{args.authorize_url}{sep}{query}")
    location = headers.get("Location") or headers.get("location")
    if status != 302 or not location:
        sys.exit(f"seed: the simulator's authorize URL answered {status} without a redirect")
    found = urllib.parse.parse_qs(urllib.parse.urlparse(location).query).get("code")
    if not found:
        sys.exit(f"seed: no code in the redirect {location}")
    return found[0]


def create(args, name, body_template):
    body = json.loads(json.dumps(body_template))
    body["name"] = name
    body["providerData"] = {"code": code(args)}
    status, _, answer = call("POST", f"{args.api}/instances", args.authorization, body)
    if status != 200:
        sys.exit(f"seed: POST /instances answered {status}: {answer.decode(errors='replace')}")
    return json.loads(answer)


def wait_for(what, seconds, probe):
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            sys.exit(f"seed: no {what} after {seconds} s")
        time.sleep(0.5)


def get_json(args, path, authorization=None):
    status, _, answer = call("GET", f"{args.api}{path}", authorization or args.authorization)
    if status != 200:
        sys.exit(f"seed: GET {path} answered {status}: {answer.decode(errors='replace')}")
    return json.loads(answer)


def toml_string(s):
    return json.dumps(s)  # a JSON string is a TOML basic string for the characters used here


def main():
    p = argparse.ArgumentParser()
    for flag in ["api", "authorize-url", "client-id", "client-secret", "redirect-uri", "callback-url",
                 "authorization", "body", "config-in", "config-out"]:
        p.add_argument(f"--{flag}", required=True)
    args = p.parse_args()

    with open(args.body, encoding="utf-8") as f:
        body = json.load(f)
    c = body["configuration"]
    c["oauth.api.key"] = args.client_id
    c["oauth.api.secret"] = args.client_secret
    c["oauth.callback.url"] = args.redirect_uri
    c["event.notification.callback.url"] = args.callback_url
    c["event.notification.signature.key"] = "schemathesis-signature-key"
    c["event.poller.refresh_interval"] = "0.02"  # 1.2 s

    main_instance = create(args, "schemathesis", body)
    disabled = create(args, "schemathesis-disable", body)
    deleted = create(args, "schemathesis-delete", body)
    iid = main_instance["id"]
    token = main_instance["token"]
    element = f"{args.authorization}, Element {token}"
    print(f"seed: instances {iid} (addressed), {disabled['id']} (switched off), {deleted['id']} (deleted)")

    def event_with_notification():
        for e in get_json(args, f"/instances/{iid}/events?pageSize=100"):
            if e.get("notificationId"):
                return e
        return None

    event = wait_for("event with a notification", 60, event_with_notification)

    def an_alert():
        alerts = get_json(args, f"/instances/{iid}/alerts")
        return alerts[0] if alerts else None

    alert = wait_for("operational alert", 60, an_alert)
    customers = get_json(args, "/hubs/finance/customers?pageSize=1", element)
    if not customers:
        sys.exit("seed: the simulator has no customers")
    customer = customers[0]["id"]
    entries = get_json(args, f"/instances/{iid}/configuration")
    # an entry a PATCH cannot remove (`propertyValue: null` is refused while notifications are on), so that the
    # configuration entry operations keep finding it
    entry = next(e for e in entries if e["key"] == "event.poller.configuration")
    print(
        f"seed: event {event['eventId']}, notification {event['notificationId']}, alert {alert['id']}, "
        f"customer {customer}, configuration entry {entry['id']} ({entry['key']})"
    )

    with open(args.config_in, encoding="utf-8") as f:
        static = f.read()
    generated = f"""
# ---- written by xtask/schemathesis/seed.py for this run ----

[auth.openapi.userOrganization]
api_key = {toml_string(args.authorization)}

[auth.openapi.userOrganizationElement]
api_key = {toml_string(element)}

[parameters]
"path.id" = {iid}
"path.key" = "sageone"
"path.configId" = {toml_string(str(entry["id"]))}
"path.eventId" = {toml_string(event["eventId"])}
"path.notificationId" = {toml_string(event["notificationId"])}
"path.alertId" = {toml_string(alert["id"])}
"path.hub" = "finance"
"path.resource" = "customers"
# the change feed waits up to `wait` seconds when nothing matches its filters: a second at most here, not 60
"query.wait" = 1

[[operations]]
include-name = "DELETE /elements/api-v2/instances/{{id}}"
parameters = {{ "path.id" = {deleted["id"]} }}

[[operations]]
include-name = "DELETE /elements/api-v2/instances/{{id}}/enabled"
parameters = {{ "path.id" = {disabled["id"]} }}

[[operations]]
include-name = "GET /elements/api-v2/hubs/{{hub}}/{{resource}}/{{id}}"
parameters = {{ "path.id" = {toml_string(customer)} }}
"""
    with open(args.config_out, "w", encoding="utf-8") as f:
        f.write(static + generated)


if __name__ == "__main__":
    main()
