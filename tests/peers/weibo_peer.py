#!/usr/bin/env python3
"""An independent Weibo fan-service platform for the gateway's end-to-end tests.

There is no Weibo SDK on PyPI to borrow, so the signature is written out from the protocol
brief (section 2.1): sha1_hex over the sorted [app_secret, timestamp, nonce], timestamps in
milliseconds. It is checked against the official handshake vector before anything is sent.
The passive reply is read as the platform would: ids swapped, `data` a URL-encoded JSON text.

Input: one JSON object on stdin. Output: one JSON object on stdout.

    {"op": "handshake", "url": ..., "secret": ..., "echostr": ..., "tamper": null|"signature"}
    {"op": "push", "url": ..., "secret": ..., "message": {...}, "timestamp_offset_ms": 0,
     "tamper": null|"signature", "timestamp_unit": "ms"|"s", "body": null|"raw body"}
    {"op": "send", "url": ..., "request": {"query": ..., "body": ...}}

`message` is the push JSON itself (type, receiver_id, sender_id, created_at, text, data); ids may
be given as strings and are sent as exact JSON integers. `body`, when given, is sent instead
of the message (signed all the same): JSON a dict cannot hold, such as a key written twice.

Answer: {"status", "content_type", "body", "request", "reply": null (empty body) |
{"result", "sender_id", "receiver_id", "type", "text"}, "reply_error", "retry_after"}.
"""

import hashlib
import json
import random
import string
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def sign(secret, timestamp, nonce):
    return hashlib.sha1("".join(sorted([secret, timestamp, nonce])).encode("utf-8")).hexdigest()


# The official vector (wiki Messages_api_start): the formula above must reproduce it.
assert sign("xyz123xyz", "1397022061823", "57155157") == "90e4c22c90a58f26526c2dd5b6c56c8822edeaa1"


def nonce():
    return "".join(random.choice(string.digits) for _ in range(8))


# The Retry-After header of the last answer (None without one): a platform backs off by it.
RETRY_AFTER = [None]


def http(method, url, query, body=None):
    data = body.encode("utf-8") if body is not None else None
    req = urllib.request.Request(url + "?" + query, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            RETRY_AFTER[0] = r.headers.get("Retry-After")
            return r.status, r.headers.get("Content-Type", ""), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        RETRY_AFTER[0] = e.headers.get("Retry-After")
        return e.code, e.headers.get("Content-Type", ""), e.read().decode("utf-8", "replace")


def signed_query(secret, offset_ms, tamper, extra=None, unit="ms"):
    ms = int(time.time() * 1000) + int(offset_ms or 0)
    ts = str(ms if unit == "ms" else ms // 1000)
    n = nonce()
    sig = sign(secret, ts, n)
    if tamper == "signature":
        sig = sign(secret + "x", ts, n)
    q = {"signature": sig, "timestamp": ts, "nonce": n}
    q.update(extra or {})
    return urllib.parse.urlencode(q)


def push_body(m):
    """The push JSON with the ids written as bare integers, whatever their size."""
    m = dict(m)
    ids = {}
    for k in ("receiver_id", "sender_id"):
        if k in m:
            ids[k] = int(m.pop(k))
    text = json.dumps(m, ensure_ascii=False)
    head = ", ".join('"%s": %d' % (k, v) for k, v in ids.items())
    return "{" + head + (", " + text[1:] if len(text) > 2 else "}")


def interpret(status, ctype, body):
    out = {"status": status, "content_type": ctype, "body": body, "reply": None, "reply_error": None}
    if status != 200 or body == "":
        return out
    try:
        r = json.loads(body)
        data = json.loads(urllib.parse.unquote(r["data"], errors="strict"))
        out["reply"] = {
            "result": r["result"],
            "sender_id": str(r["sender_id"]),
            "receiver_id": str(r["receiver_id"]),
            "type": r["type"],
            "text": data["text"],
        }
    except Exception as e:  # reported to the test, which fails on it
        out["reply_error"] = "%s: %s" % (type(e).__name__, e)
    return out


def main():
    a = json.load(sys.stdin)
    op = a["op"]
    if op == "handshake":
        q = signed_query(a["secret"], 0, a.get("tamper"), {"echostr": a["echostr"]})
        status, ctype, body = http("GET", a["url"], q)
        print(json.dumps({"status": status, "content_type": ctype, "body": body}, ensure_ascii=False))
        return
    if op == "push":
        request = {
            "query": signed_query(
                a["secret"], a.get("timestamp_offset_ms"), a.get("tamper"), unit=a.get("timestamp_unit", "ms")
            ),
            "body": a["body"] if a.get("body") is not None else push_body(a["message"]),
        }
    elif op == "send":
        request = a["request"]
    else:
        raise SystemExit("unknown op " + op)
    status, ctype, body = http("POST", a["url"], request["query"], request["body"])
    out = interpret(status, ctype, body)
    out["request"] = request
    out["retry_after"] = RETRY_AFTER[0]
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
