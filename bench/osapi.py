"""What the benchmark scripts share: a token from the admin-openrc in the environment and a
JSON request against the cloud's root URL (urllib only, so the scripts need no packages)."""
import json
import os
import urllib.error
import urllib.request

URL = os.environ["OS_AUTH_URL"].rsplit("/identity", 1)[0]


def token():
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": os.environ["OS_USERNAME"], "domain": {"name": "Default"},
        "password": os.environ["OS_PASSWORD"]}}},
        "scope": {"project": {"name": os.environ["OS_PROJECT_NAME"], "domain": {"name": "Default"}}}}}
    req = urllib.request.Request(URL + "/identity/v3/auth/tokens", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return r.headers["X-Subject-Token"]


def request(token, method, path, body=None, data=None, content_type="application/json", headers=None):
    """(status, decoded JSON body or None) of `method` on URL + `path`; `headers` are added
    (e.g. OpenStack-API-Version)."""
    if body is not None:
        data = json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data, method=method,
                                 headers={"X-Auth-Token": token, "Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(req) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
