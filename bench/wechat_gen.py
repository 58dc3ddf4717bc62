#!/usr/bin/env python3
"""Pre-builds N WeChat safe-mode text pushes with wechatpy (signed and encrypted as the platform
does), one per line as `PATH_AND_QUERY<TAB>BODY`, for bench/wechat.lua. Timestamps are now, so
run it right before the load (the gateway accepts +-300 s). Each push has its own openid and
MsgId: no dedupe hits, no quota.

usage: wechat_gen.py OUT N TOKEN APPID AES_KEY ACCOUNT
"""
import random
import string
import sys
import time

from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

out, n, token, appid, aes_key, account = sys.argv[1], int(sys.argv[2]), *sys.argv[3:7]
crypto = WeChatCrypto(token, aes_key, appid)
ts = str(int(time.time()))
base = random.randint(10**17, 9 * 10**17)
with open(out, "w") as f:
    for i in range(n):
        openid = "oBench" + "".join(random.choice(string.ascii_letters) for _ in range(22))
        xml = (
            f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{ts}</CreateTime>"
            f"<MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[第{i}号：小区门口路灯损坏，夜间出行不便，请尽快维修]]></Content>"
            f"<MsgId>{base + i}</MsgId></xml>"
        )
        nonce = "".join(random.choice(string.digits) for _ in range(9))
        enc = crypto.encrypt_message(xml, nonce, ts)
        encrypted = enc.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
        s = WeChatSigner(); s.add_data(token, ts, nonce); sig = s.signature
        m = WeChatSigner(); m.add_data(token, ts, nonce, encrypted); msig = m.signature
        body = f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        path = (f"/v1/wechat/{account}?signature={sig}&timestamp={ts}&nonce={nonce}"
                f"&encrypt_type=aes&msg_signature={msig}")
        f.write(path + "\t" + body + "\n")
