#!/usr/bin/env python3
"""An independent WeChat platform for the gateway's end-to-end tests.

It plays the WeChat server with wechatpy (PyPI 1.8.18): signs the URL check, signs pushes,
encrypts safe/compatible-mode pushes with `wechatpy.crypto.WeChatCrypto`, and checks the
gateway's passive reply the way the platform would: `MsgSignature` and appid through
`WeChatCrypto.decrypt_message`, the reply XML through `wechatpy.replies.deserialize_reply` and
`wechatpy.parse_message`, plus the strict 32-byte PKCS#7 padding that wechatpy does not check.
None of the gateway's own code is used.

Input: one JSON object on stdin. Output: one JSON object on stdout.

    {"op": "handshake", "url": ..., "token": ..., "echostr": "...", "tamper": null|"signature"}
    {"op": "push", "url": ..., "token": ..., "appid": ..., "aes_key": ...,
     "mode": "plain"|"safe"|"compat", "message": {...}, "timestamp_offset": 0,
     "tamper": null|"signature"|"msg_signature"|"truncate"|"bad_padding"|"no_encrypt",
     "encrypt_appid": null|"wx...", "body": null|"raw body", "inner": null|"raw inner xml",
     "outer": null|{message}}   (compat mode: the plain copy next to <Encrypt>)
    {"op": "build", ...the same as "push"...}          (only prints {"request": ...})
    {"op": "read", "token": ..., "appid": ..., "aes_key": ..., "status": 200, "body": "..."}
    {"op": "send", "url": ..., "token": ..., "appid": ..., "aes_key": ...,
     "request": {"query": "...", "body": "..."}}        (replays a request byte for byte)

`message`: {"type": "text"|"event"|..., "from": openid, "to": "gh_...", "create_time": int,
"msg_id": int|null, "content": str, "event": str, "event_key": str, "fields": {name: value}}.

Answer: {"status": int, "content_type": str, "body": str, "request": {"query", "body"},
"reply": null (success / empty) | {"encrypted": bool, "type", "to", "from", "content",
"create_time", "padding": int|null}, "reply_error": str|null, "retry_after": str|null,
"peer_parsed": str|null}.
"""

import base64
import json
import os
import random
import string
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import xmltodict
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import TextReply, deserialize_reply
from wechatpy.utils import WeChatSigner, check_signature


def sign(*parts):
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def nonce():
    return "".join(random.choice(string.digits) for _ in range(9))


def cdata(v):
    return "<![CDATA[" + str(v).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(m):
    """The inner push XML exactly as the platform writes it (strings in CDATA, numbers bare)."""
    parts = [
        "<ToUserName>" + cdata(m.get("to", "gh_0123456789ab")) + "</ToUserName>",
        "<FromUserName>" + cdata(m["from"]) + "</FromUserName>",
        "<CreateTime>" + str(m.get("create_time", int(time.time()))) + "</CreateTime>",
        "<MsgType>" + cdata(m.get("type", "text")) + "</MsgType>",
    ]
    if "content" in m:
        parts.append("<Content>" + cdata(m["content"]) + "</Content>")
    if "event" in m:
        parts.append("<Event>" + cdata(m["event"]) + "</Event>")
    if "event_key" in m:
        parts.append("<EventKey>" + cdata(m["event_key"]) + "</EventKey>")
    for k, v in (m.get("fields") or {}).items():
        if isinstance(v, (int, float)):
            parts.append("<%s>%s</%s>" % (k, v, k))
        else:
            parts.append("<%s>%s</%s>" % (k, cdata(v), k))
    if m.get("msg_id") is not None:
        parts.append("<MsgId>" + str(m["msg_id"]) + "</MsgId>")
    return "<xml>" + "\n".join(parts) + "</xml>"


def aes_key(encoding_aes_key):
    return base64.b64decode(encoding_aes_key + "=")


def raw_encrypt(encoding_aes_key, appid, msg, break_padding):
    """Encrypts by hand (for a ciphertext with deliberately broken padding)."""
    key = aes_key(encoding_aes_key)
    body = os.urandom(16) + struct.pack(">I", len(msg)) + msg + appid.encode()
    n = 32 - len(body) % 32
    body += bytes([n]) * n
    if break_padding:
        body = body[:-1] + b"\x00"
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(body) + enc.finalize()).decode()


def reply_padding(encoding_aes_key, encrypted):
    """The PKCS#7 pad value of a reply, or None when it is not valid 32-byte PKCS#7."""
    key = aes_key(encoding_aes_key)
    raw = base64.b64decode(encrypted)
    if len(raw) % 16:
        return None
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = dec.update(raw) + dec.finalize()
    n = plain[-1]
    if not 1 <= n <= 32 or plain[-n:] != bytes([n]) * n:
        return None
    return n


# The Retry-After header of the last answer (None without one): a platform backs off by it.
RETRY_AFTER = [None]


def http(method, url, query, body=None):
    full = url + "?" + query
    data = body.encode("utf-8") if body is not None else None
    req = urllib.request.Request(full, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "text/xml")
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            RETRY_AFTER[0] = r.headers.get("Retry-After")
            return r.status, r.headers.get("Content-Type", ""), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        RETRY_AFTER[0] = e.headers.get("Retry-After")
        return e.code, e.headers.get("Content-Type", ""), e.read().decode("utf-8", "replace")


def handshake(a):
    ts = str(int(time.time()))
    n = nonce()
    sig = sign(a["token"], ts, n)
    check_signature(a["token"], sig, ts, n)  # what the platform's own check would accept
    if a.get("tamper") == "signature":
        sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    q = {"timestamp": ts, "nonce": n, "echostr": a["echostr"]}
    if a.get("tamper") != "no_signature":
        q["signature"] = sig
    status, ctype, body = http("GET", a["url"], urllib.parse.urlencode(q))
    return {"status": status, "content_type": ctype, "body": body}


def build_push(a):
    m = a.get("message") or {}
    inner = a.get("inner") or (message_xml(m) if m else "")
    if m and not a.get("inner"):
        # What wechatpy itself makes of the fixture (expat refuses raw C0 controls, which the
        # real platform does send: brief 1.9 #5).
        try:
            peer_parsed = type(parse_message(inner)).__name__
        except Exception as e:
            peer_parsed = "unparseable: %s" % type(e).__name__
    else:
        peer_parsed = None
    ts = str(int(time.time()) + int(a.get("timestamp_offset") or 0))
    n = nonce()
    q = {"signature": sign(a["token"], ts, n), "timestamp": ts, "nonce": n}
    if m.get("from"):
        q["openid"] = m["from"]
    tamper = a.get("tamper")
    mode = a.get("mode", "plain")
    body = inner
    if mode in ("safe", "compat"):
        appid = a.get("encrypt_appid") or a["appid"]
        if tamper == "bad_padding":
            encrypt = raw_encrypt(a["aes_key"], appid, inner.encode("utf-8"), True)
        else:
            crypto = WeChatCrypto(a["token"], a["aes_key"], appid)
            envelope = xmltodict.parse(crypto.encrypt_message(inner, n, ts))["xml"]
            encrypt = envelope["Encrypt"]
            assert envelope["MsgSignature"] == sign(a["token"], ts, n, encrypt)
        if tamper == "truncate":
            encrypt = encrypt[:-8]
        msg_sig = sign(a["token"], ts, n, encrypt)
        if tamper == "msg_signature":
            msg_sig = sign(a["token"], ts, n, encrypt + "x")
        q["encrypt_type"] = "aes"
        q["msg_signature"] = msg_sig
        to = m.get("to", "gh_0123456789ab")
        if mode == "safe":
            body = "<xml><ToUserName>" + cdata(to) + "</ToUserName>\n<Encrypt>" + cdata(encrypt) + "</Encrypt></xml>"
        else:
            # Compatible mode: plain fields next to <Encrypt>. `outer` lets a test make the
            # unsigned plain copy disagree with the encrypted one.
            plain = message_xml(a["outer"]) if a.get("outer") else inner
            body = plain[: -len("</xml>")] + "\n<Encrypt>" + cdata(encrypt) + "</Encrypt></xml>"
    elif tamper == "no_encrypt":
        q["encrypt_type"] = "aes"
        q["msg_signature"] = sign(a["token"], ts, n, "")
    if tamper == "signature":
        q["signature"] = sign(a["token"], ts, n + "1")
    if a.get("body") is not None:
        body = a["body"]
    return {"query": urllib.parse.urlencode(q), "body": body}, peer_parsed


def interpret(a, status, ctype, body):
    """Reads the gateway's answer as the platform would."""
    out = {"status": status, "content_type": ctype, "body": body, "reply": None, "reply_error": None}
    if status != 200 or body in ("", "success"):
        return out
    try:
        xml = body
        encrypted = False
        padding = None
        if "<Encrypt>" in body:
            env = xmltodict.parse(body)["xml"]
            crypto = WeChatCrypto(a["token"], a["aes_key"], a["appid"])
            # Checks MsgSignature over (token, TimeStamp, Nonce, Encrypt) and the appid.
            xml = crypto.decrypt_message(body, env["MsgSignature"], env["TimeStamp"], env["Nonce"])
            padding = reply_padding(a["aes_key"], env["Encrypt"])
            if padding is None:
                raise ValueError("reply padding is not 32-byte PKCS#7")
            encrypted = True
        reply = deserialize_reply(xml)
        parsed = parse_message(xml)  # the same XML read as a message: From/To as sent
        if not isinstance(reply, TextReply):
            raise ValueError("not a text reply: %s" % type(reply).__name__)
        if parsed.source != reply.source or parsed.target != reply.target:
            raise ValueError("parse_message and deserialize_reply disagree")
        out["reply"] = {
            "encrypted": encrypted,
            "type": reply.type,
            "to": reply.target,
            "from": reply.source,
            "content": reply.content,
            "create_time": int(xml.split("<CreateTime>")[1].split("</CreateTime>")[0]),
            "padding": padding,
        }
    except Exception as e:  # reported to the test, which fails on it
        out["reply_error"] = "%s: %s" % (type(e).__name__, e)
    return out


def main():
    a = json.load(sys.stdin)
    op = a["op"]
    if op == "handshake":
        print(json.dumps(handshake(a), ensure_ascii=False))
        return
    if op == "build":
        request, peer_parsed = build_push(a)
        print(json.dumps({"request": request, "peer_parsed": peer_parsed}, ensure_ascii=False))
        return
    if op == "read":
        # An answer the test fetched itself (e.g. several at once), read as the platform would.
        print(json.dumps(interpret(a, a["status"], a.get("content_type", ""), a["body"]), ensure_ascii=False))
        return
    if op == "push":
        request, peer_parsed = build_push(a)
    elif op == "send":
        request, peer_parsed = a["request"], None
    else:
        raise SystemExit("unknown op " + op)
    status, ctype, body = http("POST", a["url"], request["query"], request["body"])
    out = interpret(a, status, ctype, body)
    out["request"] = request
    out["retry_after"] = RETRY_AFTER[0]
    out["peer_parsed"] = peer_parsed
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
