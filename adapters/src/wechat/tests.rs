//! Flow tests for the WeChat adapter: official vectors through the public functions, every
//! message and event type, and every refusal. Crypto and XML details are tested in their modules.

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SAMPLE_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const NOW: i64 = 1_700_000_000;
const TOKEN: &str = "tok3n";
const APPID: &str = "wx0123456789abcdef";

fn inbound(query: &str, body: &[u8], now: i64) -> Inbound {
    Inbound {
        query: query.to_string(),
        headers: vec![("content-type".into(), "text/xml".into())],
        body: body.to_vec(),
        now,
    }
}

fn plain_acc() -> WechatAccount {
    WechatAccount::new(TOKEN, APPID)
}

fn safe_acc() -> WechatAccount {
    plain_acc().with_aes_key(SAMPLE_KEY)
}

/// The query WeChat sends with a plaintext push at `ts`.
fn signed_query(token: &str, ts: i64, nonce: &str) -> String {
    let ts = ts.to_string();
    format!(
        "signature={}&timestamp={ts}&nonce={nonce}&openid=oUser1",
        sign(&[token, &ts, nonce])
    )
}

/// Plays the WeChat server in safe mode (brief §5.2): encrypts `inner` for `app_id` and signs it.
fn safe_request(acc: &WechatAccount, app_id: &str, inner: &str, ts: i64) -> TestResult2<Inbound> {
    let key = decode_aes_key(SAMPLE_KEY)?;
    let enc = encrypt(&key, app_id, *b"0123456789abcdef", inner.as_bytes())?;
    Ok(encrypted_request(acc, &enc, ts, false))
}

type TestResult2<T> = Result<T, Box<dyn std::error::Error>>;

/// A signed safe-mode (or compatible-mode) request carrying `enc` as `<Encrypt>`.
fn encrypted_request(acc: &WechatAccount, enc: &str, ts: i64, compatible: bool) -> Inbound {
    let nonce = "77";
    let ts_s = ts.to_string();
    let query = format!(
        "{}&encrypt_type=aes&msg_signature={}",
        signed_query(&acc.token, ts, nonce),
        sign(&[&acc.token, &ts_s, nonce, enc])
    );
    let plain = if compatible {
        "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[forged]]></Content>"
    } else {
        ""
    };
    let body = format!(
        "<xml><ToUserName><![CDATA[gh_abc]]></ToUserName>{plain}<Encrypt><![CDATA[{enc}]]></Encrypt></xml>"
    );
    inbound(&query, body.as_bytes(), ts)
}

/// A message body with the common fields and `extra` after `MsgType`.
fn msg(msg_type: &str, extra: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[gh_abc]]></ToUserName><FromUserName><![CDATA[oUser1]]></FromUserName>\
         <CreateTime>{NOW}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{extra}</xml>"
    )
}

fn plain_push(body: &str) -> Result<Push, AdapterError> {
    parse_push(
        &plain_acc(),
        &inbound(&signed_query(TOKEN, NOW, "n1"), body.as_bytes(), NOW),
    )
}

// ---------------------------------------------------------------------------------------------
// Official vectors through the public API

#[test]
fn doc_get_handshake_echoes_echostr() -> TestResult {
    let acc = WechatAccount::new("AAAAA", "wx134c8103faa5a59e");
    let q = "signature=f464b24fc39322e44b38aa78f5edd27bd1441696&timestamp=1714036504&nonce=1514711492&echostr=4375120948345356249";
    // No window on the handshake: it works at the vector's time and years later.
    for now in [1_714_036_504, NOW + 100_000_000] {
        assert_eq!(
            verify_url(&acc, &inbound(q, b"", now))?,
            "4375120948345356249"
        );
    }
    // Same in safe mode: an official account's echostr is never encrypted.
    let safe = acc.clone().with_aes_key("A".repeat(43));
    assert_eq!(
        verify_url(&safe, &inbound(q, b"", NOW))?,
        "4375120948345356249"
    );

    let cases: &[(&str, &str)] = &[
        ("wrong signature", "signature=f464b24fc39322e44b38aa78f5edd27bd1441697&timestamp=1714036504&nonce=1514711492&echostr=1"),
        ("other nonce", "signature=f464b24fc39322e44b38aa78f5edd27bd1441696&timestamp=1714036504&nonce=1514711493&echostr=1"),
        ("no signature", "timestamp=1714036504&nonce=1514711492&echostr=1"),
        ("empty signature", "signature=&timestamp=1714036504&nonce=1514711492&echostr=1"),
    ];
    for (label, q) in cases {
        assert_eq!(
            verify_url(&acc, &inbound(q, b"", NOW)),
            Err(AdapterError::BadSignature),
            "{label}"
        );
    }
    let no_echo =
        "signature=f464b24fc39322e44b38aa78f5edd27bd1441696&timestamp=1714036504&nonce=1514711492";
    assert_eq!(
        verify_url(&acc, &inbound(no_echo, b"", NOW)),
        Err(AdapterError::MissingField("echostr"))
    );
    Ok(())
}

/// V-W and V-B: the WeCom-style handshake (msg_signature + encrypted echostr).
#[test]
fn encrypted_echostr_handshakes() -> TestResult {
    let vw = WechatAccount::new("123456", "wx49f0ab532d5d035a")
        .with_aes_key("kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR");
    let echo =
        "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==";
    let sig = "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96";
    let encoded = echo.replace('+', "%2B").replace('=', "%3D");
    // Properly percent-encoded, and with raw `+` that a form decoder turns into spaces.
    for e in [encoded.as_str(), echo] {
        let q = format!("msg_signature={sig}&timestamp=1411443780&nonce=437374425&echostr={e}");
        assert_eq!(
            verify_url(&vw, &inbound(&q, b"", NOW))?,
            "5927782489442352469"
        );
    }
    let q = format!("msg_signature={sig}&timestamp=1411443780&nonce=437374424&echostr={encoded}");
    assert_eq!(
        verify_url(&vw, &inbound(&q, b"", NOW)),
        Err(AdapterError::BadSignature)
    );
    // The right signature but another receiver configured.
    let other = WechatAccount {
        app_id: "wx0000000000000000".into(),
        ..vw.clone()
    };
    let q = format!("msg_signature={sig}&timestamp=1411443780&nonce=437374425&echostr={encoded}");
    assert_eq!(
        verify_url(&other, &inbound(&q, b"", NOW)),
        Err(AdapterError::AppIdMismatch)
    );

    let vb = WechatAccount::new("QDG6eK", "wx5823bf96d3bd56c7")
        .with_aes_key("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C");
    let q = "msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780\
             &echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D";
    assert_eq!(
        verify_url(&vb, &inbound(q, b"", NOW))?,
        "1616140317555161061"
    );
    Ok(())
}

const VC_BODY: &str = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=]]></Encrypt></xml>";
const VC_QUERY: &str = "signature=16120ec1b8dbb870f510d87ce6bc2463eae6ca1a&timestamp=1409735669&nonce=1320562132&openid=oyORnuP8q7ou2gfYjqLzSIWZf0rs&encrypt_type=aes&msg_signature=5d197aaffba7e9b25a30732f161a50dee96bd5fa";

fn vc_acc() -> WechatAccount {
    WechatAccount::new("spamtest", "wx2c2769f8efd9abc2").with_aes_key(SAMPLE_KEY)
}

/// V-C: Tencent's Python sample, a compatible-mode body, decrypted exactly (newlines kept).
#[test]
fn official_compatible_mode_push_v_c() -> TestResult {
    let push = parse_push(
        &vc_acc(),
        &inbound(VC_QUERY, VC_BODY.as_bytes(), 1_409_735_669),
    )?;
    assert_eq!(push.mode, Mode::Compatible);
    assert_eq!(push.to_user, "gh_10f6c3c3ac5a");
    assert_eq!(push.from_user, "oyORnuP8q7ou2gfYjqLzSIWZf0rs");
    assert_eq!(push.create_time, 1_409_735_668);
    assert_eq!(push.msg_id, Some(6_054_768_590_064_713_728));
    assert_eq!(
        push.message,
        Message::Text {
            content: "abcdteT".into()
        }
    );
    assert_eq!(
        push.dedupe_key(),
        "msg:6054768590064713728:oyORnuP8q7ou2gfYjqLzSIWZf0rs:1409735668"
    );

    let enc = xml::parse(VC_BODY)?.text("Encrypt").to_string();
    let d = decrypt_raw(&decode_aes_key(SAMPLE_KEY)?, &enc)?;
    assert_eq!(&d.random, b"89465c840c5f116f");
    assert_eq!(d.receive_id, "wx2c2769f8efd9abc2");
    assert_eq!(
        String::from_utf8(d.msg)?,
        "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>"
    );

    // The plain copy is not covered by msg_signature: forging it changes nothing.
    let forged = VC_BODY.replace("abcdteT", "forged!");
    let push = parse_push(
        &vc_acc(),
        &inbound(VC_QUERY, forged.as_bytes(), 1_409_735_669),
    )?;
    assert_eq!(
        push.message,
        Message::Text {
            content: "abcdteT".into()
        }
    );
    Ok(())
}

/// V-D: Tencent's C++ sample, safe mode.
#[test]
fn official_safe_mode_push_v_d() -> TestResult {
    let enc = "mfBCs65c67CeJw22u4VT2TD73q5H06+ocrAIxswCaeZ/d/Lw0msSZFHY0teqgSYiI1zR2gD2DKrB3TIrmX/liNSDrGqS8jSI/WPeKB5VPr7Ezr7gomZAyGCwJSgT1TRFWPfONGJMxuj2nk4faTuspAuVIFQ6SHwZuJBZC7mcJp7Cgr9cUhATQWDbOPaE7ukZBTV2YqyzH+UI2AK+J1S47cE79k1RX8t0hcTz/O0hlK8DGXKnvYv88qKQcI7z4iaajqHfRVZKBNyOODabs+It+ZfM3dWTeFcPgDbGtIEnpt/EDtuuA/zMvtkaKdHdswPnVZQ+xdwbYr3ldGvfT8HlEYEgkgKaThxTFobVlwzu2ZkXCjicbP3xdr15Iq48ObgzPpqYuZ3IEoyggZDKClquk0u0orMck4GTF/XyE8yGzc4=";
    assert_eq!(
        sign(&["spamtest", "1410349438", "298025754", enc]),
        "003fee52ecc56afb46c00b5c7721be87860ce785"
    );
    let query = format!(
        "signature={}&timestamp=1410349438&nonce=298025754&openid=x&encrypt_type=aes&msg_signature=003fee52ecc56afb46c00b5c7721be87860ce785",
        sign(&["spamtest", "1410349438", "298025754"])
    );
    let body = format!("<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>");
    let push = parse_push(
        &vc_acc(),
        &inbound(&query, body.as_bytes(), 1_410_349_438 + 299),
    )?;
    assert_eq!(push.mode, Mode::Safe);
    assert_eq!(push.create_time, 1_410_349_438);
    assert_eq!(push.msg_id, Some(6_057_404_712_141_979_648));
    assert_eq!(
        push.message,
        Message::Text {
            content: "abcdteT".into()
        }
    );
    assert_eq!(
        &decrypt_raw(&decode_aes_key(SAMPLE_KEY)?, enc)?.random,
        b"78b55f1d91440c6b"
    );
    Ok(())
}

fn ve_acc() -> WechatAccount {
    WechatAccount::new("AAAAA", "wx134c8103faa5a59e").with_aes_key("A".repeat(43))
}

/// V-E: the official doc page; all-zero key, pad 22, an event (debug_demo) in safe mode.
#[test]
fn official_safe_mode_event_v_e() -> TestResult {
    let body = format!("<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName><Encrypt><![CDATA[{}]]></Encrypt></xml>", crypto::tests::VE_ENCRYPT);
    let query = "signature=cc0c594499c1634947d5b502f158ee518947db27&timestamp=1715943329&nonce=1590219412&openid=o9AgO5Kd5ggOC-bXrbNODIiE3bGY&encrypt_type=aes&msg_signature=6c12a4205838198b8fa631b3220723bb07f1015c";
    let push = parse_push(&ve_acc(), &inbound(query, body.as_bytes(), 1_715_943_329))?;
    assert_eq!(push.mode, Mode::Safe);
    assert_eq!(push.to_user, "gh_97417a04a28d");
    assert_eq!(push.from_user, "o9AgO5Kd5ggOC-bXrbNODIiE3bGY");
    assert_eq!(
        push.message,
        Message::Event(Event {
            name: "debug_demo".into(),
            key: None,
            kind: EventKind::Other
        })
    );
    assert_eq!(
        push.dedupe_key(),
        "event:o9AgO5Kd5ggOC-bXrbNODIiE3bGY:1715943329:debug_demo:"
    );
    assert_eq!(push.to_submission("main"), None);

    let wrong = WechatAccount {
        app_id: "wx134c8103faa5a59f".into(),
        ..ve_acc()
    };
    assert_eq!(
        parse_push(&wrong, &inbound(query, body.as_bytes(), 1_715_943_329)),
        Err(AdapterError::AppIdMismatch)
    );
    Ok(())
}

/// V-E's reply vector, byte for byte through the envelope writer.
#[test]
fn official_encrypted_reply_v_e() -> TestResult {
    let sealed = seal_reply(
        &ve_acc(),
        "<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>",
        1_713_424_427,
        "415670741",
        *b"999951349e8ee746",
    )?;
    assert_eq!(
        sealed,
        "<xml><Encrypt><![CDATA[hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSvPT9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7]]></Encrypt>\
         <MsgSignature><![CDATA[03e0812039325c2712ef5f0f980fd14c70d6e307]]></MsgSignature>\
         <TimeStamp>1713424427</TimeStamp><Nonce><![CDATA[415670741]]></Nonce></xml>"
    );
    Ok(())
}

/// V-W's reply vector (wechatpy emits newlines between elements; the values are what count).
#[test]
fn wechatpy_encrypted_reply_v_w() -> TestResult {
    let acc = WechatAccount::new("123456", "wx49f0ab532d5d035a")
        .with_aes_key("kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR");
    let reply = "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>";
    let sealed = seal_reply(
        &acc,
        reply,
        1_411_525_903,
        "461056294",
        *b"1234567890123456",
    )?;
    let f = xml::parse(&sealed)?;
    assert_eq!(f.text("Encrypt"), "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3");
    assert_eq!(
        f.text("MsgSignature"),
        "407518b7649e86ef23978113f92d27afa9296533"
    );
    assert_eq!(f.text("TimeStamp"), "1411525903");
    assert_eq!(f.text("Nonce"), "461056294");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Message and event types

#[test]
fn every_message_type_is_parsed() -> TestResult {
    let cases: Vec<(&str, String, Message)> = vec![
        (
            "text",
            msg("text", "<Content><![CDATA[路灯坏了\n请修]]></Content><MsgId>1</MsgId>"),
            Message::Text { content: "路灯坏了\n请修".into() },
        ),
        (
            "image",
            msg("image", "<PicUrl><![CDATA[http://mmbiz/p.jpg]]></PicUrl><MediaId><![CDATA[m1]]></MediaId><MsgId>2</MsgId>"),
            Message::Image { pic_url: "http://mmbiz/p.jpg".into(), media_id: "m1".into() },
        ),
        (
            "voice with recognition",
            msg("voice", "<MediaId><![CDATA[v1]]></MediaId><Format><![CDATA[amr]]></Format><Recognition><![CDATA[噪音扰民]]></Recognition><MsgId>3</MsgId>"),
            Message::Voice { media_id: "v1".into(), format: "amr".into(), recognition: Some("噪音扰民".into()) },
        ),
        (
            "voice without recognition",
            msg("voice", "<MediaId><![CDATA[v2]]></MediaId><Format><![CDATA[speex]]></Format><Recognition><![CDATA[]]></Recognition><MsgId>4</MsgId>"),
            Message::Voice { media_id: "v2".into(), format: "speex".into(), recognition: None },
        ),
        (
            "video",
            msg("video", "<MediaId><![CDATA[vd]]></MediaId><ThumbMediaId><![CDATA[th]]></ThumbMediaId><MsgId>5</MsgId>"),
            Message::Video { media_id: "vd".into(), thumb_media_id: "th".into() },
        ),
        (
            "shortvideo",
            msg("shortvideo", "<MediaId><![CDATA[sv]]></MediaId><ThumbMediaId><![CDATA[th]]></ThumbMediaId><MsgId>6</MsgId>"),
            Message::ShortVideo { media_id: "sv".into(), thumb_media_id: "th".into() },
        ),
        (
            "location (X is latitude)",
            msg("location", "<Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y><Scale>20</Scale><Label><![CDATA[广州市天河区]]></Label><MsgId>7</MsgId>"),
            Message::Location { lat: 23.134521, lon: 113.358803, scale: Some(20), label: "广州市天河区".into() },
        ),
        (
            "link",
            msg("link", "<Title><![CDATA[标题]]></Title><Description><![CDATA[描述]]></Description><Url><![CDATA[http://a.cn/x]]></Url><MsgId>8</MsgId>"),
            Message::Link { title: "标题".into(), description: "描述".into(), url: "http://a.cn/x".into() },
        ),
        (
            "upper-case MsgType",
            msg("TEXT", "<Content>hi</Content><MsgId>9</MsgId>"),
            Message::Text { content: "hi".into() },
        ),
        (
            "unknown type is a variant, not an error",
            msg("miniprogrampage", "<Title><![CDATA[t]]></Title><MsgId>10</MsgId>"),
            Message::Unknown { msg_type: "miniprogrampage".into() },
        ),
    ];
    for (label, body, want) in cases {
        let push = plain_push(&body).map_err(|e| format!("{label}: {e}"))?;
        assert_eq!(push.mode, Mode::Plaintext, "{label}");
        assert_eq!(push.to_user, "gh_abc", "{label}");
        assert_eq!(push.from_user, "oUser1", "{label}");
        assert_eq!(push.create_time, NOW, "{label}");
        assert!(push.msg_id.is_some(), "{label}");
        assert_eq!(push.message, want, "{label}");
    }
    Ok(())
}

#[test]
fn every_event_type_is_parsed() -> TestResult {
    let ev = |name: &str, key: Option<&str>, kind| {
        Message::Event(Event {
            name: name.into(),
            key: key.map(str::to_string),
            kind,
        })
    };
    let cases: Vec<(&str, String, Message)> = vec![
        (
            "plain subscribe",
            msg("event", "<Event><![CDATA[subscribe]]></Event>"),
            ev("subscribe", None, EventKind::Subscribe { scene: None, ticket: None }),
        ),
        (
            "subscribe via QR code",
            msg("event", "<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>"),
            ev("subscribe", Some("qrscene_123123"), EventKind::Subscribe { scene: Some("123123".into()), ticket: Some("TICKET".into()) }),
        ),
        (
            "unsubscribe",
            msg("event", "<Event><![CDATA[unsubscribe]]></Event>"),
            ev("unsubscribe", None, EventKind::Unsubscribe),
        ),
        (
            "SCAN",
            msg("event", "<Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[123123]]></EventKey><Ticket><![CDATA[T]]></Ticket>"),
            ev("SCAN", Some("123123"), EventKind::Scan { scene: "123123".into(), ticket: Some("T".into()) }),
        ),
        (
            "LOCATION",
            msg("event", "<Event><![CDATA[LOCATION]]></Event><Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision>"),
            ev("LOCATION", None, EventKind::Location { lat: 23.137466, lon: 113.352425, precision: Some(119.38504) }),
        ),
        (
            "CLICK",
            msg("event", "<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[QUERY_ORDER]]></EventKey>"),
            ev("CLICK", Some("QUERY_ORDER"), EventKind::Click { key: "QUERY_ORDER".into() }),
        ),
        (
            "VIEW",
            msg("event", "<Event><![CDATA[VIEW]]></Event><EventKey><![CDATA[http://12345.gov.cn/]]></EventKey><MenuId>42</MenuId>"),
            ev("VIEW", Some("http://12345.gov.cn/"), EventKind::View { url: "http://12345.gov.cn/".into(), menu_id: Some("42".into()) }),
        ),
        (
            "mixed case is accepted",
            msg("Event", "<Event><![CDATA[Click]]></Event><EventKey>K</EventKey>"),
            ev("Click", Some("K"), EventKind::Click { key: "K".into() }),
        ),
        (
            "unknown event with MsgID",
            msg("event", "<Event><![CDATA[MASSSENDJOBFINISH]]></Event><MsgID>1000001625</MsgID><Status><![CDATA[send success]]></Status>"),
            ev("MASSSENDJOBFINISH", None, EventKind::Other),
        ),
        (
            "nested event payload",
            msg("event", "<Event><![CDATA[scancode_waitmsg]]></Event><EventKey><![CDATA[k]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType><ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo>"),
            ev("scancode_waitmsg", Some("k"), EventKind::Other),
        ),
    ];
    for (label, body, want) in cases {
        let push = plain_push(&body).map_err(|e| format!("{label}: {e}"))?;
        assert_eq!(push.message, want, "{label}");
        assert_eq!(
            push.to_submission("main"),
            None,
            "{label}: events make no submission"
        );
    }
    let mass = plain_push(&msg(
        "event",
        "<Event>MASSSENDJOBFINISH</Event><MsgID>1000001625</MsgID>",
    ))?;
    assert_eq!(mass.msg_id, Some(1_000_001_625));
    Ok(())
}

#[test]
fn msg_id_keeps_all_64_bits() -> TestResult {
    let push = plain_push(&msg(
        "text",
        "<Content>x</Content><MsgId>18446744073709551615</MsgId>",
    ))?;
    assert_eq!(push.msg_id, Some(u64::MAX));
    let err = plain_push(&msg(
        "text",
        "<Content>x</Content><MsgId>18446744073709551616</MsgId>",
    ));
    assert!(
        matches!(err, Err(AdapterError::InvalidField { field: "MsgId", .. })),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn raw_control_characters_do_not_lose_the_message() -> TestResult {
    let body = msg(
        "text",
        "<Content><![CDATA[井盖\u{1d}丢了\u{0}]]></Content><MsgId>11</MsgId>",
    );
    let push = plain_push(&body)?;
    assert_eq!(
        push.message,
        Message::Text {
            content: "井盖丢了".into()
        }
    );
    // The same through a character reference.
    let push = plain_push(&msg("text", "<Content>a&#29;b</Content><MsgId>12</MsgId>"))?;
    assert_eq!(
        push.message,
        Message::Text {
            content: "ab".into()
        }
    );
    Ok(())
}

#[test]
fn whitespace_between_elements_is_accepted() -> TestResult {
    let body = "<xml>\n  <ToUserName><![CDATA[gh_abc]]></ToUserName>\n  <FromUserName>oUser1</FromUserName>\n  \
                <CreateTime> 1700000000 </CreateTime>\n  <MsgType>text</MsgType>\n  <Content>hi</Content>\n  <MsgId>5</MsgId>\n</xml>\n";
    let push = plain_push(body)?;
    assert_eq!(push.create_time, NOW);
    assert_eq!(push.from_user, "oUser1");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Modes

#[test]
fn safe_and_compatible_round_trips() -> TestResult {
    let inner = msg(
        "text",
        "<Content><![CDATA[加密消息]]></Content><MsgId>77</MsgId>",
    );
    let acc = safe_acc();
    let push = parse_push(&acc, &safe_request(&acc, APPID, &inner, NOW)?)?;
    assert_eq!(push.mode, Mode::Safe);
    assert_eq!(
        push.message,
        Message::Text {
            content: "加密消息".into()
        }
    );

    let key = decode_aes_key(SAMPLE_KEY)?;
    let enc = encrypt(&key, APPID, [9; 16], inner.as_bytes())?;
    let push = parse_push(&acc, &encrypted_request(&acc, &enc, NOW, true))?;
    assert_eq!(push.mode, Mode::Compatible);
    assert_eq!(
        push.message,
        Message::Text {
            content: "加密消息".into()
        }
    );

    // An account that requires encryption takes both encrypted modes.
    let strict = WechatAccount {
        require_encryption: true,
        ..acc.clone()
    };
    assert!(parse_push(&strict, &encrypted_request(&strict, &enc, NOW, false)).is_ok());
    Ok(())
}

#[test]
fn an_encrypt_node_without_the_query_flag_still_takes_the_encrypted_path() -> TestResult {
    let acc = safe_acc();
    let key = decode_aes_key(SAMPLE_KEY)?;
    let inner = msg("text", "<Content>x</Content><MsgId>1</MsgId>");
    let enc = encrypt(&key, APPID, [1; 16], inner.as_bytes())?;
    let mut req = encrypted_request(&acc, &enc, NOW, false);
    req.query = req.query.replace("&encrypt_type=aes", "");
    assert_eq!(parse_push(&acc, &req)?.mode, Mode::Safe);
    Ok(())
}

#[test]
fn the_window_is_inclusive_in_both_directions() -> TestResult {
    for ts in [NOW - 300, NOW, NOW + 300] {
        let q = signed_query(TOKEN, ts, "n");
        let body = msg("text", "<Content>x</Content><MsgId>1</MsgId>");
        assert!(
            parse_push(&plain_acc(), &inbound(&q, body.as_bytes(), NOW)).is_ok(),
            "{ts}"
        );
    }
    let wide = WechatAccount {
        window_s: 3600,
        ..plain_acc()
    };
    let q = signed_query(TOKEN, NOW - 3000, "n");
    assert!(parse_push(
        &wide,
        &inbound(&q, msg("text", "<Content>x</Content>").as_bytes(), NOW)
    )
    .is_ok());
    assert_eq!(
        check_window(i64::MIN, i64::MAX, 300),
        Err(AdapterError::StaleTimestamp)
    );
    assert_eq!(
        check_window(i64::MAX, i64::MIN, 300),
        Err(AdapterError::StaleTimestamp)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Refusals: (label, account, request, expected error code), all through one `check`.

fn check(label: &str, acc: &WechatAccount, req: &Inbound, code: &str) {
    match parse_push(acc, req) {
        Err(e) => assert_eq!(e.code(), code, "{label}: {e}"),
        Ok(p) => panic!("{label}: expected {code}, parsed {p:?}"),
    }
}

#[test]
fn bad_requests_are_typed_errors() -> TestResult {
    let plain = plain_acc();
    let safe = safe_acc();
    let strict = WechatAccount {
        require_encryption: true,
        ..safe_acc()
    };
    let good = msg("text", "<Content>x</Content><MsgId>1</MsgId>");
    let q = signed_query(TOKEN, NOW, "n1");
    let req = |body: &str| inbound(&q, body.as_bytes(), NOW);
    let key = decode_aes_key(SAMPLE_KEY)?;
    let enc = encrypt(&key, APPID, [3; 16], good.as_bytes())?;
    let enc_req = |e: &str| encrypted_request(&safe, e, NOW, false);
    let lol = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\"><!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">]><xml><Content>&lol2;</Content></xml>";
    let xxe = "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&xxe;</Content></xml>";
    let deep = format!("<xml>{}</xml>", "<a>".repeat(20) + &"</a>".repeat(20));
    let mut tampered_sig = enc_req(&enc);
    tampered_sig.query = tampered_sig
        .query
        .replace("msg_signature=", "msg_signature=0");
    let mut no_msg_sig = enc_req(&enc);
    no_msg_sig.query = no_msg_sig
        .query
        .split('&')
        .filter(|p| !p.starts_with("msg_signature="))
        .collect::<Vec<_>>()
        .join("&");
    let aes_flag_plain_body = inbound(&format!("{q}&encrypt_type=aes"), good.as_bytes(), NOW);
    let inner_doctype = encrypt(&key, APPID, [3; 16], xxe.as_bytes())?;
    let stale = |ts: i64| inbound(&signed_query(TOKEN, ts, "n"), good.as_bytes(), NOW);

    let cases: Vec<(&str, &WechatAccount, Inbound, &str)> = vec![
        ("bad signature", &plain, inbound(&q.replace("signature=", "signature=f"), good.as_bytes(), NOW), "bad_signature"),
        ("signature of another token", &plain, inbound(&signed_query("other", NOW, "n1"), good.as_bytes(), NOW), "bad_signature"),
        ("no signature", &plain, inbound(&format!("timestamp={NOW}&nonce=n1"), good.as_bytes(), NOW), "bad_signature"),
        ("no query at all", &plain, inbound("", good.as_bytes(), NOW), "bad_signature"),
        ("stale: 301 s old", &plain, stale(NOW - 301), "stale_timestamp"),
        ("stale: 301 s ahead", &plain, stale(NOW + 301), "stale_timestamp"),
        ("stale: a day old", &plain, stale(NOW - 86_400), "stale_timestamp"),
        ("timestamp in ms is not seconds", &plain, stale(NOW * 1000), "stale_timestamp"),
        ("timestamp not a number", &plain, inbound(&format!("signature={}&timestamp=abc&nonce=n", sign(&[TOKEN, "abc", "n"])), good.as_bytes(), NOW), "invalid_field"),
        ("no nonce", &plain, inbound(&format!("signature=x&timestamp={NOW}"), good.as_bytes(), NOW), "missing_field"),
        ("XXE", &plain, req(xxe), "invalid_xml"),
        ("billion laughs", &plain, req(lol), "invalid_xml"),
        ("too deep", &plain, req(&deep), "invalid_xml"),
        ("not XML", &plain, req("{\"MsgType\":\"text\"}"), "invalid_xml"),
        ("empty body", &plain, req(""), "invalid_xml"),
        ("too large", &plain, req(&format!("<xml><Content>{}</Content></xml>", "a".repeat(MAX_BODY))), "body_too_large"),
        ("not UTF-8", &plain, inbound(&q, b"<xml><Content>\xff\xfe</Content></xml>", NOW), "invalid_utf8"),
        ("no ToUserName", &plain, req("<xml><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>"), "missing_field"),
        ("no FromUserName", &plain, req("<xml><ToUserName>g</ToUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>"), "missing_field"),
        ("no MsgType", &plain, req("<xml><ToUserName>g</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime></xml>"), "missing_field"),
        ("bad CreateTime", &plain, req(&good.replace(&NOW.to_string(), "yesterday")), "invalid_field"),
        ("bad MsgId", &plain, req(&msg("text", "<MsgId>-1</MsgId>")), "invalid_field"),
        ("event without Event", &plain, req(&msg("event", "")), "missing_field"),
        ("location without Location_X", &plain, req(&msg("location", "<Location_Y>1</Location_Y>")), "missing_field"),
        ("latitude out of range", &plain, req(&msg("location", "<Location_X>91</Location_X><Location_Y>1</Location_Y>")), "invalid_field"),
        ("latitude not a number", &plain, req(&msg("location", "<Location_X>NaN</Location_X><Location_Y>1</Location_Y>")), "invalid_field"),
        ("plaintext when encryption is required", &strict, req(&good), "encryption_required"),
        ("encrypt_type=aes but no Encrypt", &safe, aes_flag_plain_body, "missing_field"),
        ("tampered msg_signature", &safe, tampered_sig, "bad_signature"),
        ("missing msg_signature", &safe, no_msg_sig, "bad_signature"),
        ("encrypted push, no key configured", &plain, enc_req(&enc), "decrypt_failed"),
        ("wrong app id", &safe, safe_request(&safe, "wx_someone_else", &good, NOW)?, "app_id_mismatch"),
        ("invalid base64", &safe, enc_req("%%%not-base64%%%"), "decrypt_failed"),
        ("truncated ciphertext", &safe, enc_req(&enc[..enc.len() - 24]), "decrypt_failed"),
        ("ciphertext not a multiple of 16", &safe, enc_req(&base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 40])), "decrypt_failed"),
        ("one zero block", &safe, enc_req("AAAAAAAAAAAAAAAAAAAAAA=="), "decrypt_failed"),
        ("DOCTYPE inside the ciphertext", &safe, enc_req(&inner_doctype), "invalid_xml"),
    ];
    for (label, acc, req, code) in &cases {
        check(label, acc, req, code);
    }
    Ok(())
}

#[test]
fn a_malformed_key_is_reported_as_such() {
    let acc = WechatAccount::new(TOKEN, APPID).with_aes_key("too-short");
    assert!(matches!(
        acc.aes_key(),
        Err(AdapterError::InvalidField {
            field: "encoding_aes_key",
            ..
        })
    ));
    assert_eq!(
        WechatAccount::new(TOKEN, APPID).with_aes_key("").aes_key(),
        Ok(None)
    );
}

#[test]
fn debug_output_hides_secrets() {
    let shown = format!("{:?}", safe_acc());
    assert!(
        !shown.contains(TOKEN) && !shown.contains(SAMPLE_KEY),
        "{shown}"
    );
    assert!(shown.contains(APPID));
}

// ---------------------------------------------------------------------------------------------
// Dedupe and submissions

#[test]
fn dedupe_keys_follow_the_brief() -> TestResult {
    let text = plain_push(&msg("text", "<Content>x</Content><MsgId>42</MsgId>"))?;
    assert_eq!(text.dedupe_key(), format!("msg:42:oUser1:{NOW}"));
    // A retry (another nonce and timestamp in the query, same body) has the same key.
    let retry = parse_push(
        &plain_acc(),
        &inbound(
            &signed_query(TOKEN, NOW + 5, "other"),
            msg("text", "<Content>x</Content><MsgId>42</MsgId>").as_bytes(),
            NOW + 5,
        ),
    )?;
    assert_eq!(retry.dedupe_key(), text.dedupe_key());
    // The same MsgId from another user is another message (WxJava #333).
    let other = plain_push(
        &msg("text", "<Content>x</Content><MsgId>42</MsgId>").replace("oUser1", "oUser2"),
    )?;
    assert_ne!(other.dedupe_key(), text.dedupe_key());

    let click = plain_push(&msg("event", "<Event>CLICK</Event><EventKey>K1</EventKey>"))?;
    assert_eq!(click.dedupe_key(), format!("event:oUser1:{NOW}:click:K1"));
    let click2 = plain_push(&msg("event", "<Event>CLICK</Event><EventKey>K2</EventKey>"))?;
    assert_ne!(click.dedupe_key(), click2.dedupe_key());

    // Without a MsgId the content decides, independent of element order.
    let a = plain_push(&msg("miniprogrampage", "<Title>a</Title><AppId>x</AppId>"))?;
    let a2 = plain_push(&msg("miniprogrampage", "<AppId>x</AppId><Title>a</Title>"))?;
    let b = plain_push(&msg("miniprogrampage", "<Title>b</Title><AppId>x</AppId>"))?;
    assert_eq!(a.dedupe_key(), a2.dedupe_key());
    assert_ne!(a.dedupe_key(), b.dedupe_key());
    assert!(a
        .dedupe_key()
        .starts_with(&format!("nomsgid:oUser1:{NOW}:miniprogrampage:")));
    Ok(())
}

#[test]
fn submissions_per_message_type() -> TestResult {
    let base = |content: &str, msg_id: &str| {
        let mut s = Submission::new(
            Channel::Wechat,
            Identity::new(IdentityKind::Wechat, "oUser1"),
            NOW,
            content,
        );
        s.account = "city".into();
        s.channel_ref = msg_id.into();
        s.dedupe_key = Some(format!("msg:{msg_id}:oUser1:{NOW}"));
        s
    };
    let att = |kind, url: &str, media_id: &str| Attachment {
        kind,
        url: url.into(),
        media_id: media_id.into(),
    };
    let cases: Vec<(&str, String, Option<Submission>)> = vec![
        ("text is trimmed and NFC", msg("text", "<Content>  cafe\u{301} 噪音 </Content><MsgId>1</MsgId>"), Some(base("caf\u{e9} 噪音", "1"))),
        ("blank text makes nothing", msg("text", "<Content>   </Content><MsgId>2</MsgId>"), None),
        ("image", msg("image", "<PicUrl>http://p/1.jpg</PicUrl><MediaId>m1</MediaId><MsgId>3</MsgId>"), Some(Submission {
            attachments: vec![att(AttachmentKind::Image, "http://p/1.jpg", "m1")],
            ..base("", "3")
        })),
        ("voice uses the recognition", msg("voice", "<MediaId>v</MediaId><Format>amr</Format><Recognition>楼道灯不亮</Recognition><MsgId>4</MsgId>"), Some(Submission {
            attachments: vec![att(AttachmentKind::Voice, "", "v")],
            ..base("楼道灯不亮", "4")
        })),
        ("shortvideo", msg("shortvideo", "<MediaId>s</MediaId><ThumbMediaId>t</ThumbMediaId><MsgId>5</MsgId>"), Some(Submission {
            attachments: vec![att(AttachmentKind::Video, "", "s")],
            ..base("", "5")
        })),
        ("location", msg("location", "<Location_X>39.9</Location_X><Location_Y>116.4</Location_Y><Scale>15</Scale><Label>北京市东城区</Label><MsgId>6</MsgId>"), Some(Submission {
            location: Location { address: "北京市东城区".into(), lat: Some(39.9), lon: Some(116.4) },
            ..base("北京市东城区", "6")
        })),
        ("link", msg("link", "<Title>占道经营</Title><Description>早市</Description><Url>http://a.cn/1</Url><MsgId>7</MsgId>"), Some(Submission {
            attachments: vec![att(AttachmentKind::Link, "http://a.cn/1", "")],
            ..base("占道经营\n早市\nhttp://a.cn/1", "7")
        })),
        ("unknown type", msg("miniprogrampage", "<MsgId>8</MsgId>"), None),
        ("event", msg("event", "<Event>subscribe</Event>"), None),
    ];
    for (label, body, want) in cases {
        let push = plain_push(&body).map_err(|e| format!("{label}: {e}"))?;
        assert_eq!(push.to_submission("city"), want, "{label}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Replies

#[test]
fn plaintext_replies() -> TestResult {
    let acc = plain_acc();
    let push = plain_push(&msg("text", "<Content>x</Content><MsgId>1</MsgId>"))?;
    for none in [None, Some(""), Some("  \n"), Some("\u{1}")] {
        assert_eq!(
            render_reply(&acc, &push, none, NOW, "n", [0; 16])?,
            "success",
            "{none:?}"
        );
    }
    let reply = render_reply(
        &acc,
        &push,
        Some("已受理，工单号 2026112901000123\n谢谢"),
        NOW + 1,
        "n",
        [0; 16],
    )?;
    assert_eq!(
        reply,
        "<xml><ToUserName><![CDATA[oUser1]]></ToUserName><FromUserName><![CDATA[gh_abc]]></FromUserName>\
         <CreateTime>1700000001</CreateTime><MsgType><![CDATA[text]]></MsgType>\
         <Content><![CDATA[已受理，工单号 2026112901000123\n谢谢]]></Content></xml>"
    );
    Ok(())
}

#[test]
fn cdata_terminator_in_reply_text_is_split() -> TestResult {
    let acc = plain_acc();
    let push = plain_push(&msg("text", "<Content>x</Content><MsgId>1</MsgId>"))?;
    let text = "a]]>b<c>&d]]>";
    let reply = render_reply(&acc, &push, Some(text), NOW, "n", [0; 16])?;
    assert!(
        reply.contains("<Content><![CDATA[a]]]]><![CDATA[>b<c>&d]]]]><![CDATA[>]]></Content>"),
        "{reply}"
    );
    assert_eq!(xml::parse(&reply)?.get("Content"), Some(text));
    // Control characters never reach the XML.
    let reply = render_reply(&acc, &push, Some("x\u{1d}y"), NOW, "n", [0; 16])?;
    assert_eq!(xml::parse(&reply)?.get("Content"), Some("xy"));
    Ok(())
}

#[test]
fn encrypted_replies_open_with_the_account_key() -> TestResult {
    let acc = safe_acc();
    let inner = msg("text", "<Content>x</Content><MsgId>1</MsgId>");
    let push = parse_push(&acc, &safe_request(&acc, APPID, &inner, NOW)?)?;
    assert_eq!(
        render_reply(&acc, &push, None, NOW, "n", [0; 16])?,
        "success"
    );
    let sealed = render_reply(&acc, &push, Some("收到]]>"), NOW + 2, "12345", [5; 16])?;
    let env = xml::parse(&sealed)?;
    let enc = env.text("Encrypt");
    assert_eq!(env.text("TimeStamp"), "1700000002");
    assert_eq!(env.text("Nonce"), "12345");
    assert_eq!(
        env.text("MsgSignature"),
        sign(&[TOKEN, "1700000002", "12345", enc])
    );
    let reply = xml::parse(&decrypt(&decode_aes_key(SAMPLE_KEY)?, APPID, enc)?)?;
    assert_eq!(reply.text("ToUserName"), "oUser1");
    assert_eq!(reply.text("FromUserName"), "gh_abc");
    assert_eq!(reply.text("CreateTime"), "1700000002");
    assert_eq!(reply.text("MsgType"), "text");
    assert_eq!(reply.text("Content"), "收到]]>");

    // Compatible mode replies are encrypted too.
    let key = decode_aes_key(SAMPLE_KEY)?;
    let enc = encrypt(&key, APPID, [9; 16], inner.as_bytes())?;
    let compat = parse_push(&acc, &encrypted_request(&acc, &enc, NOW, true))?;
    assert!(
        render_reply(&acc, &compat, Some("ok"), NOW, "n", [0; 16])?.starts_with("<xml><Encrypt>")
    );

    // The nonce is echoed into XML and signature, so it must be plain.
    for bad in ["", "a b", "x]]>", &"9".repeat(65)] {
        assert!(
            matches!(
                render_reply(&acc, &push, Some("ok"), NOW, bad, [0; 16]),
                Err(AdapterError::InvalidField { field: "nonce", .. })
            ),
            "{bad:?}"
        );
    }
    // Sealing needs a key.
    assert!(seal_reply(&plain_acc(), "<xml/>", NOW, "n", [0; 16]).is_err());
    Ok(())
}

/// The texts the emergency rules hear of a push refused for a repeated field.
fn heard(r: &PushRefusal<Push>) -> Vec<String> {
    r.readable
        .as_ref()
        .map(|s| {
            std::iter::once(s.content.clone())
                .chain(s.items.iter().map(|i| i.content.clone()))
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// A field the gateway reads sent twice is refused (422 `invalid_field` naming it), in plain
/// and safe mode, with the first-valued push for the answer and every value heard (until
/// 2026-12-07 the first `<Content>` was taken and the second never read).
#[test]
fn a_repeated_field_is_refused_and_every_value_heard() -> TestResult {
    let two = msg(
        "text",
        "<Content><![CDATA[路灯坏了]]></Content><Content><![CDATA[楼下着火了]]></Content><MsgId>42</MsgId>",
    );
    let plain = |body: &str| {
        parse_push_readable(
            &plain_acc(),
            &inbound(&signed_query(TOKEN, NOW, "n1"), body.as_bytes(), NOW),
        )
    };
    let r = plain(&two).expect_err("refused");
    assert_eq!(r.error, AdapterError::repeated("Content"));
    assert_eq!(heard(&r), ["路灯坏了", "路灯坏了", "楼下着火了"]);
    let p = r.push.as_deref().expect("the first-valued push");
    assert_eq!((p.mode, p.from_user.as_str()), (Mode::Plaintext, "oUser1"));
    let sub = r.readable.as_deref().expect("readable");
    assert_eq!(sub.identity, Identity::new(IdentityKind::Wechat, "oUser1"));
    assert_eq!(plain_push(&two), Err(AdapterError::repeated("Content")));

    // Sealed: the decrypted message is read the same way, and the push says the reply is too.
    let r = parse_push_readable(&safe_acc(), &safe_request(&safe_acc(), APPID, &two, NOW)?)
        .expect_err("refused");
    assert_eq!(r.error, AdapterError::repeated("Content"));
    assert_eq!(r.push.as_deref().map(|p| p.mode), Some(Mode::Safe));
    assert_eq!(heard(&r).last().map(String::as_str), Some("楼下着火了"));

    // An empty first value still has the second heard; a repeated sender keeps the text heard.
    let empty_first = two.replace("<![CDATA[路灯坏了]]>", "");
    assert_eq!(
        heard(&plain(&empty_first).expect_err("refused")),
        ["楼下着火了"]
    );
    let from = msg(
        "text",
        "<FromUserName>oOther</FromUserName><Content>楼下着火了</Content>",
    );
    let r = plain(&from).expect_err("refused");
    assert_eq!(r.error, AdapterError::repeated("FromUserName"));
    assert_eq!(heard(&r), ["楼下着火了"]);
    // A field the gateway does not read may repeat (nested items, a future field).
    assert!(plain_push(&msg(
        "text",
        "<Content>x</Content><Extra>1</Extra><Extra>2</Extra>"
    ))
    .is_ok());
    // Two envelopes: which one was signed? Refused, nothing decrypted.
    let enc = encrypted_request(&safe_acc(), "abc", NOW, false);
    let body = String::from_utf8(enc.body.clone())?
        .replace("</xml>", "<Encrypt><![CDATA[def]]></Encrypt></xml>");
    let twice = inbound(&enc.query, body.as_bytes(), NOW);
    assert_eq!(
        parse_push(&safe_acc(), &twice),
        Err(AdapterError::repeated("Encrypt"))
    );
    Ok(())
}
