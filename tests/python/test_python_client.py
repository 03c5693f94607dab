"""python-socketio (from PyPI) against a running gateway (PROTOCOL.md §9).

A client that cannot take the recovery offset opts out with `auth: {token, recovery: False}`
and its handlers see the payload alone; a client that does not opt out sees the offset as
one more argument (a string starting with `~`). Run by tests/python/run.sh.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import urllib.request

import socketio

URL = os.environ["LMS_URL"]
SECRET = os.environ["JWT_SECRET"].encode()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(sub: str, tenant: str, role: str) -> str:
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": sub, "tenantId": tenant, "role": role, "iat": now, "exp": now + 600}).encode())
    sig = hmac.new(SECRET, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def notify(tenant: str, user: str, nid: str) -> None:
    body = json.dumps({
        "tenantId": tenant,
        "target": {"userId": user},
        "notification": {"id": nid, "title": "t", "message": "m"},
    }).encode()
    req = urllib.request.Request(
        f"{URL}/api/v1/notifications",
        data=body,
        headers={"Authorization": f"Bearer {token('backend', tenant, 'service')}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as res:
        assert res.status == 202, res.status


def receive(auth: dict, tenant: str, user: str, nid: str, handler_arity: int) -> list:
    """Connects with `auth`, sends one notification to the user, returns the arguments its
    `notification:new` handler received."""
    got: list = []
    done = threading.Event()
    sio = socketio.Client(reconnection=False)

    if handler_arity == 1:
        @sio.on("notification:new")
        def on_new(data):
            got.append([data])
            done.set()
    else:
        @sio.on("notification:new")
        def on_new(*args):
            got.append(list(args))
            done.set()

    sio.connect(URL, auth=auth, transports=["websocket"], wait_timeout=10)
    try:
        notify(tenant, user, nid)
        assert done.wait(10), "no notification:new within 10 s"
    finally:
        sio.disconnect()
    return got[0]


def main() -> int:
    tenant, user = f"py{os.getpid()}", "u1"
    tok = token(user, tenant, "student")

    args = receive({"token": tok, "recovery": False}, tenant, user, "py-1", handler_arity=1)
    assert len(args) == 1 and args[0]["id"] == "py-1", args
    print("opted out: the handler gets the payload alone")

    args = receive({"token": tok}, tenant, user, "py-2", handler_arity=2)
    assert len(args) == 2 and args[0]["id"] == "py-2", args
    assert isinstance(args[1], str) and args[1].startswith("~"), args
    print("default: the payload, then the offset", args[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
