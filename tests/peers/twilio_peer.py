#!/usr/bin/env python3
"""An independent Twilio peer for tests/channels_cti.rs, built on the PyPI `twilio` package.

It plays Twilio's side of a voice webhook: it signs a form post with
`twilio.request_validator.RequestValidator` (exactly as Twilio's servers do), posts it to the
gateway, and builds the TwiML the gateway should answer with
`twilio.twiml.voice_response.VoiceResponse`. Both documents are parsed with a real XML parser and
reduced to a canonical structure (element name, attributes, stripped text, children), so the Rust
test compares structure, not bytes.

Usage: python3 twilio_peer.py call < request.json   (prints one JSON object)

request.json:
  {"auth_token": "...",
   "sign_url": "URL Twilio signs (the configured public URL plus the query)",
   "post_url": "URL actually posted to (the gateway on loopback, same query)",
   "params": {"CallSid": "...", ...},
   "tamper": false,               # change a parameter after signing (a forged request)
   "method": "POST",              # or "GET": a voice URL set to GET, the parameters in the query
   "rule": {"secret": "...", "algorithm": "HMAC_SHA256"},   # optional: signed by a Webhooks
                                  # Rule's SharedKey instead of the auth token, with its header
   "expect": [["say", {"message": "...", "voice": "Polly.Zhiyu", "language": "cmn-CN"}], ["hangup", {}], ...]}

answer:
  {"status": 200, "content_type": "...", "body": "...", "signature": "...",
   "self_check": true,            # RequestValidator.validate accepts its own signature
   "got": <canonical answer or null when not XML>, "want": <canonical VoiceResponse or null>,
   "want_xml": "str(VoiceResponse)"}
"""

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator
from twilio.twiml.voice_response import VoiceResponse


def canon(xml_text):
    """Element name, attributes, stripped text and children of a TwiML document; None if not XML."""
    try:
        root = ET.fromstring(xml_text.encode("utf-8") if isinstance(xml_text, str) else xml_text)
    except ET.ParseError:
        return None

    def walk(e):
        return {
            "name": e.tag,
            "attrs": dict(sorted(e.attrib.items())),
            "text": (e.text or "").strip(),
            "children": [walk(c) for c in e],
        }

    return walk(root)


def build(expect):
    """A VoiceResponse from a list of [verb, kwargs]."""
    r = VoiceResponse()
    for verb, kwargs in expect:
        kwargs = dict(kwargs)
        if verb == "say":
            r.say(kwargs.pop("message"), **kwargs)
        elif verb == "dial":
            r.dial(kwargs.pop("number"), **kwargs)
        elif verb == "reject":
            r.reject(**kwargs)
        elif verb == "hangup":
            r.hangup()
        elif verb == "redirect":
            r.redirect(kwargs.pop("url"), **kwargs)
        elif verb == "enqueue":
            r.enqueue(kwargs.pop("name"), **kwargs)
        else:
            raise SystemExit(f"unknown verb {verb}")
    return r


def with_query(url, params):
    """`url` with `params` added to its query, as Twilio builds a GET webhook's URL."""
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode(params)


def call(req):
    rule = req.get("rule")
    # A Webhooks Rule signs with its SharedKey secret and algorithm, and says so in a header.
    validator = RequestValidator(rule["secret"] if rule else req["auth_token"])
    algorithm = rule["algorithm"] if rule else None
    params = {k: str(v) for k, v in req["params"].items()}
    sent = dict(params)
    if req.get("tamper"):
        # A forged request: the signature no longer matches what is sent.
        sent["Digits"] = sent.get("Digits", "") + "9"
    headers = {"User-Agent": "TwilioProxy/1.1"}
    if rule:
        headers[SIGNATURE_SETTINGS_HEADER] = (
            "key=webhooks_sharedkey_test,algorithm=" + rule["algorithm"]
        )
    if req.get("method", "POST") == "GET":
        # Every parameter is in the URL, which is signed whole, with no POST parameters.
        sign_url = with_query(req["sign_url"], params)
        signature = validator.compute_signature(sign_url, {}, algorithm)
        self_check = validator.validate(sign_url, {}, signature, algorithm)
        url, body, method = with_query(req["post_url"], sent), None, "GET"
    else:
        signature = validator.compute_signature(req["sign_url"], params, algorithm)
        self_check = validator.validate(req["sign_url"], params, signature, algorithm)
        url, method = req["post_url"], "POST"
        body = urllib.parse.urlencode(sent).encode("utf-8")
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    headers["X-Twilio-Signature"] = signature
    http_req = urllib.request.Request(url, data=body, method=method, headers=headers)
    # The gateway is on loopback: never through a proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(http_req, timeout=10) as resp:
            status, ctype, text = resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as e:
        status, ctype, text = e.code, e.headers.get("Content-Type", ""), e.read()
    text = text.decode("utf-8", "replace")
    out = {
        "status": status,
        "content_type": ctype,
        "body": text,
        "signature": signature,
        "self_check": self_check,
        "got": canon(text) if "xml" in ctype else None,
        "want": None,
        "want_xml": None,
    }
    if req.get("expect") is not None:
        want = str(build(req["expect"]))
        out["want_xml"] = want
        out["want"] = canon(want)
    return out


def main():
    if len(sys.argv) != 2 or sys.argv[1] != "call":
        raise SystemExit(__doc__)
    req = json.load(sys.stdin)
    json.dump(call(req), sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
