//! The WeChat message crypto (Tencent's WXBizMsgCrypt scheme): SHA-1 signatures over sorted
//! fields and AES-256-CBC with a 32-byte PKCS#7 padding.
//!
//! Everything here is a pure function of its arguments. The 16 random bytes that prefix every
//! encrypted message are passed in, so the official vectors can be reproduced byte for byte.

use aes::Aes256;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use crate::AdapterError;

/// The 32 bytes of an AES-256 key, decoded from an `EncodingAESKey`.
pub type AesKey = [u8; 32];

/// Length of an `EncodingAESKey` as configured on the WeChat platform.
pub const ENCODING_AES_KEY_LEN: usize = 43;

/// WeChat pads to 32-byte blocks (not the AES block size of 16): pad values run 1..=32.
const PAD_BLOCK: usize = 32;
/// The AES block size; the ciphertext is always a multiple of it.
const AES_BLOCK: usize = 16;
/// Length of the random prefix of every plaintext.
const RANDOM_LEN: usize = 16;
/// Random prefix plus the 4-byte big-endian message length.
const HEADER_LEN: usize = RANDOM_LEN + 4;

/// Standard alphabet, but tolerant of non-zero trailing bits and of missing or present padding.
/// The strict `STANDARD` engine of base64 0.22 rejects the official sample key
/// `abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG` because its last character leaves non-zero
/// trailing bits; Tencent's own decoders ignore them.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The WeChat signature: the fields sorted bytewise, concatenated, SHA-1, lowercase hex.
///
/// `signature` is `sign(&[token, timestamp, nonce])`; `msg_signature` is
/// `sign(&[token, timestamp, nonce, encrypt])`. Weibo uses the same algorithm with its app secret.
pub fn sign(parts: &[&str]) -> String {
    let mut sorted: Vec<&str> = parts.to_vec();
    // `str`'s ordering is bytewise, which is what WeChat's samples do (a string sort, not numeric).
    sorted.sort_unstable();
    let mut hasher = Sha1::new();
    for part in sorted {
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Whether `given` (as received, any hex case) equals the `expected` signature, compared in
/// constant time so that response timing leaks nothing about the right value.
pub fn signature_matches(expected: &str, given: &str) -> bool {
    let given = given.trim().to_ascii_lowercase();
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// Decodes a 43-character `EncodingAESKey` into the AES key: `base64(EncodingAESKey + "=")`,
/// decoded leniently (non-zero trailing bits allowed). Fails with `InvalidField { field: "encoding_aes_key" }`
/// (WeChat's error -40004) when the key is not 43 base64 characters.
pub fn decode_aes_key(encoding_aes_key: &str) -> Result<AesKey, AdapterError> {
    let bad = |reason: String| AdapterError::InvalidField {
        field: "encoding_aes_key",
        reason,
    };
    let key = encoding_aes_key.trim();
    if key.len() != ENCODING_AES_KEY_LEN {
        return Err(bad(format!(
            "must be {ENCODING_AES_KEY_LEN} characters, got {}",
            key.chars().count()
        )));
    }
    let bytes = LENIENT
        .decode(format!("{key}="))
        .map_err(|e| bad(format!("not base64: {e}")))?;
    AesKey::try_from(bytes.as_slice())
        .map_err(|_| bad(format!("decodes to {} bytes, not 32", bytes.len())))
}

/// Encrypts `msg` for `receive_id` (the AppID of an official account; the CorpID for WeCom) and
/// returns the base64 text that goes into `<Encrypt>`.
///
/// Layout before padding: `random16 || u32_be(len(msg)) || msg || receive_id`, then PKCS#7 to a
/// multiple of 32 (a whole block of 32 is added when already aligned), then AES-256-CBC with
/// IV = the first 16 key bytes.
pub fn encrypt(
    key: &AesKey,
    receive_id: &str,
    random16: [u8; 16],
    msg: &[u8],
) -> Result<String, AdapterError> {
    let len = u32::try_from(msg.len()).map_err(|_| AdapterError::TooLarge {
        limit: u32::MAX as usize,
    })?;
    let mut plain = Vec::with_capacity(HEADER_LEN + msg.len() + receive_id.len() + PAD_BLOCK);
    plain.extend_from_slice(&random16);
    plain.extend_from_slice(&len.to_be_bytes());
    plain.extend_from_slice(msg);
    plain.extend_from_slice(receive_id.as_bytes());
    pad32(&mut plain);
    Ok(STANDARD.encode(cbc_encrypt(key, &plain)))
}

/// What an `<Encrypt>` value decrypts to, before the receive id is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The sender's 16 random prefix bytes.
    pub random: [u8; 16],
    /// The message (UTF-8 XML for pushes; the echo string for a WeCom URL check).
    pub msg: Vec<u8>,
    /// The id the sender encrypted for (AppID, component AppID or CorpID).
    pub receive_id: String,
}

/// Decrypts an `<Encrypt>` value without checking whom it was for. Use [`decrypt`] unless you
/// need the parts (tests, diagnostics).
///
/// Only call this after the `msg_signature` over the same text has verified: the signature is
/// what keeps this from being a padding oracle, since the scheme itself has no MAC.
pub fn decrypt_raw(key: &AesKey, encrypted: &str) -> Result<Decrypted, AdapterError> {
    let fail = |what: &str| AdapterError::Decrypt(what.to_string());
    // A `+` that went through a form/URL decoder arrives as a space (WxJava #917); base64 never
    // contains spaces, so putting the `+` back is lossless. Line breaks are dropped for the same
    // reason.
    let cleaned: String = encrypted
        .trim()
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .map(|c| if c == ' ' { '+' } else { c })
        .collect();
    let cipher = LENIENT
        .decode(cleaned.as_bytes())
        .map_err(|e| AdapterError::Decrypt(format!("invalid base64: {e}")))?;
    if cipher.is_empty() || cipher.len() % AES_BLOCK != 0 {
        return Err(fail("ciphertext length is not a positive multiple of 16"));
    }
    let plain = cbc::Decryptor::<Aes256>::new(key.into(), &iv_of(key).into())
        .decrypt_padded_vec_mut::<NoPadding>(&cipher)
        .map_err(|_| fail("AES-CBC decryption failed"))?;
    let content = unpad32(&plain).ok_or_else(|| fail("bad PKCS#7 padding"))?;

    let random: [u8; 16] = content
        .get(..RANDOM_LEN)
        .and_then(|r| r.try_into().ok())
        .ok_or_else(|| fail("plaintext shorter than its header"))?;
    let len_bytes: [u8; 4] = content
        .get(RANDOM_LEN..HEADER_LEN)
        .and_then(|r| r.try_into().ok())
        .ok_or_else(|| fail("plaintext shorter than its header"))?;
    let msg_len = usize::try_from(u32::from_be_bytes(len_bytes))
        .map_err(|_| fail("message length does not fit"))?;
    let msg_end = HEADER_LEN
        .checked_add(msg_len)
        .ok_or_else(|| fail("message length overflows"))?;
    let msg = content
        .get(HEADER_LEN..msg_end)
        .ok_or_else(|| fail("message length exceeds the plaintext"))?
        .to_vec();
    let receive_id = content
        .get(msg_end..)
        .and_then(|r| std::str::from_utf8(r).ok())
        .ok_or_else(|| fail("receive id is not UTF-8"))?
        .to_string();
    Ok(Decrypted {
        random,
        msg,
        receive_id,
    })
}

/// Decrypts an `<Encrypt>` value, requires it to be addressed to `receive_id` (the account's
/// AppID; error -40005 otherwise) and to be UTF-8, and returns the message text.
pub fn decrypt(key: &AesKey, receive_id: &str, encrypted: &str) -> Result<String, AdapterError> {
    let d = decrypt_raw(key, encrypted)?;
    if d.receive_id
        .as_bytes()
        .ct_eq(receive_id.as_bytes())
        .unwrap_u8()
        != 1
    {
        return Err(AdapterError::AppIdMismatch);
    }
    String::from_utf8(d.msg).map_err(|_| AdapterError::InvalidUtf8)
}

/// The IV is the first half of the key; WeChat sends no separate IV.
fn iv_of(key: &AesKey) -> [u8; 16] {
    let mut iv = [0u8; 16];
    let (head, _) = key.split_at(AES_BLOCK);
    iv.copy_from_slice(head);
    iv
}

/// PKCS#7 to a multiple of 32, always adding at least one byte (esap/wechat PR #43: a missing
/// block when already aligned breaks WeChat's decoder).
fn pad32(buf: &mut Vec<u8>) {
    let n = PAD_BLOCK - buf.len() % PAD_BLOCK;
    // n is in 1..=32, so the cast is exact.
    buf.resize(buf.len() + n, n as u8);
}

/// Strips a 32-block PKCS#7 padding: the last byte n must be 1..=32 and the last n bytes all n.
/// Generic 16-block unpadders reject valid WeChat payloads (n up to 32).
fn unpad32(plain: &[u8]) -> Option<&[u8]> {
    let n = usize::from(*plain.last()?);
    if n == 0 || n > PAD_BLOCK || n > plain.len() {
        return None;
    }
    let (content, pad) = plain.split_at(plain.len() - n);
    pad.iter().all(|&b| usize::from(b) == n).then_some(content)
}

/// AES-256-CBC without padding; `data` must be a multiple of 16 bytes (guaranteed by
/// [`pad32`] at every call site).
fn cbc_encrypt(key: &AesKey, data: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<Aes256>::new(key.into(), &iv_of(key).into())
        .encrypt_padded_vec_mut::<NoPadding>(data)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// The official sample key (Tencent's WXBizMsgCrypt samples, vectors V-A, V-C, V-D).
    const SAMPLE_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

    const VA_APPID: &str = "wxb11529c136998cb6";
    const VA_A1: &str =
        "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==";
    const VA_A2_MSG: &str = "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName><FromUserName><![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime><MsgType><![CDATA[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId><Title><![CDATA[testCallBackReplyVideo]]></Title><Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>";
    const VA_A2: &str = "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkupqcEcW7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEuZ+xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGvDahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb";

    pub(crate) const VE_ENCRYPT: &str = "D7yzvUNAL930rd28wf21s4hvXhz0L6Uit/p2Di6C5DHyYGpEgdBRnKjBec34JwoQXicwaZC7fOVihW80F4VtsdvE//1vr7oAbqjDv8KenVp+ajKYpJnyQ4zMRhIC+a31fCVOMC03FfzV/QuC94kBP55a+Za3sJgvAn+ZbsNqZI5DkyuzkhQN8OBqCzFhizGmy0xpM0MEA4agpvE+RuNO1rhHTtuJB5yltw1FiYzecSXJ+y/D2r81VkRn2eYjh2ltsoyfbDR7Is6ookXIFxTfyeNyeHxMeT4KN5WpCDmSbTcUYrbBUlkGLJ9n/rU8YOywma6G7aTb7KZKOqCxgfoUlYEZPk4FUL/TK7ShriFDMVCLyjQJ15Ob++agDWtcxhfUfe6HIoIpRW8mKNBQiY/Jd1svvuskA1wLef1RTtzKfMpagSCX/laZINmdnX4zrF6kIaR9P4xQrWXbsTFHTYe0Mg==";

    /// Every signature in the brief (official, and derived ones recomputed there), through one
    /// table: (fields, expected signature).
    #[test]
    fn official_signature_vectors() {
        let cases: &[(&[&str], &str)] = &[
            // V-DOC-GET
            (
                &["AAAAA", "1714036504", "1514711492"],
                "f464b24fc39322e44b38aa78f5edd27bd1441696",
            ),
            // V-DOC-POST-PLAIN
            (
                &["AAAAA", "1714037059", "486452656"],
                "899cf89e464efb63f54ddac96b0a0a235f53aa78",
            ),
            // V-A derived plain signature
            (
                &["pamtest", "1409304348", "xxxxxx"],
                "76480565cbe296026c53aaacd1ad523a1ddba24f",
            ),
            // V-C plain signature
            (
                &["spamtest", "1409735669", "1320562132"],
                "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a",
            ),
            // V-E plain signature (derived)
            (
                &["AAAAA", "1715943329", "1590219412"],
                "cc0c594499c1634947d5b502f158ee518947db27",
            ),
            // V-E msg_signature over the inbound Encrypt
            (
                &["AAAAA", "1715943329", "1590219412", VE_ENCRYPT],
                "6c12a4205838198b8fa631b3220723bb07f1015c",
            ),
            // wechatpy test_utils: plain check
            (
                &["test", "1410685589", "test"],
                "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff",
            ),
            // Weibo handshake (same algorithm with the app secret)
            (
                &["xyz123xyz", "1397022061823", "57155157"],
                "90e4c22c90a58f26526c2dd5b6c56c8822edeaa1",
            ),
        ];
        for (parts, want) in cases {
            assert_eq!(sign(parts), *want, "{parts:?}");
            // The order of the inputs must not matter: the function sorts.
            let mut reversed = parts.to_vec();
            reversed.reverse();
            assert_eq!(sign(&reversed), *want, "{parts:?} reversed");
        }
    }

    #[test]
    fn signature_compare_is_exact_but_case_insensitive() {
        let good = "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff";
        assert!(signature_matches(good, good));
        assert!(signature_matches(good, &good.to_ascii_uppercase()));
        // wechatpy's negative case: the last hex digit changed.
        assert!(!signature_matches(
            good,
            "f21891de399b4e33a1a93c9a7b8a8fffb5a443fe"
        ));
        assert!(!signature_matches(good, ""));
        assert!(!signature_matches(good, &good[..39]));
    }

    #[test]
    fn aes_keys_decode_leniently_and_reject_bad_lengths() -> TestResult {
        // The strict engine rejects the official key; that is the pitfall the lenient one avoids.
        assert!(STANDARD.decode(format!("{SAMPLE_KEY}=")).is_err());
        let key = decode_aes_key(SAMPLE_KEY)?;
        assert_eq!(key.len(), 32);
        assert_eq!(decode_aes_key(&"A".repeat(43))?, [0u8; 32]);
        for bad in [
            "",
            "short",
            &"A".repeat(42),
            &"A".repeat(44),
            &format!("{}!", "A".repeat(42)),
        ] {
            assert!(
                matches!(
                    decode_aes_key(bad),
                    Err(AdapterError::InvalidField {
                        field: "encoding_aes_key",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        Ok(())
    }

    /// V-A: Tencent's Java sample with a fixed random prefix, byte for byte, and back.
    #[test]
    fn official_encrypt_vectors_v_a() -> TestResult {
        let key = decode_aes_key(SAMPLE_KEY)?;
        let random = *b"aaaabbbbccccdddd";
        for (msg, want) in [("我是中文abcd123", VA_A1), (VA_A2_MSG, VA_A2)] {
            assert_eq!(encrypt(&key, VA_APPID, random, msg.as_bytes())?, want);
            assert_eq!(decrypt(&key, VA_APPID, want)?, msg);
            assert_eq!(decrypt_raw(&key, want)?.random, random);
        }
        Ok(())
    }

    /// V-E: an all-`A` key (32 zero bytes) and a padding of 22 (> 16), decrypted exactly; and the
    /// reply vector from the same page.
    #[test]
    fn official_vector_v_e_pad_over_16() -> TestResult {
        let key = decode_aes_key(&"A".repeat(43))?;
        let d = decrypt_raw(&key, VE_ENCRYPT)?;
        assert_eq!(&d.random, b"1205899eaf019bbd");
        assert_eq!(d.receive_id, "wx134c8103faa5a59e");
        assert_eq!(d.msg.len(), 292);
        let want = "<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>\n<FromUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName>\n<CreateTime>1715943329</CreateTime>\n<MsgType><![CDATA[event]]></MsgType>\n<Event><![CDATA[debug_demo]]></Event>\n<debug_str><![CDATA[hello world]]></debug_str>\n</xml>";
        assert_eq!(String::from_utf8(d.msg)?, want);

        let reply = "<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>";
        let enc = encrypt(
            &key,
            "wx134c8103faa5a59e",
            *b"999951349e8ee746",
            reply.as_bytes(),
        )?;
        assert_eq!(enc, "hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSvPT9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7");
        assert_eq!(
            sign(&["AAAAA", "1713424427", "415670741", &enc]),
            "03e0812039325c2712ef5f0f980fd14c70d6e307"
        );
        Ok(())
    }

    /// V-W: wechatpy's WeCom vectors (same AES layout, receive id = CorpID).
    #[test]
    fn wechatpy_vectors_v_w() -> TestResult {
        let key = decode_aes_key("kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR")?;
        let corp = "wx49f0ab532d5d035a";
        let reply = "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>";
        let enc = encrypt(&key, corp, *b"1234567890123456", reply.as_bytes())?;
        assert_eq!(enc, "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3");
        assert_eq!(
            sign(&["123456", "1411525903", "461056294", &enc]),
            "407518b7649e86ef23978113f92d27afa9296533"
        );

        let inbound = "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=";
        assert_eq!(
            sign(&["123456", "1411525903", "461056294", inbound]),
            "74d92dfeb87ba7c714f89d98870ae5eb62dff26d"
        );
        let msg = decrypt(&key, corp, inbound)?;
        assert!(msg.contains("<Content><![CDATA[test]]></Content>"), "{msg}");
        assert!(
            msg.contains("<FromUserName><![CDATA[messense]]></FromUserName>"),
            "{msg}"
        );
        Ok(())
    }

    #[test]
    fn round_trips_for_every_length_around_the_block_sizes() -> TestResult {
        let key = decode_aes_key(SAMPLE_KEY)?;
        let appid = "wx2c2769f8efd9abc2";
        // 20 header + 18 appid = 38 bytes before the message; lengths 0..=80 cross every
        // alignment, including exact multiples of 32 that need a whole padding block.
        for n in 0..=80usize {
            let msg: String = "中a".chars().cycle().take(n).collect();
            let random = [n as u8; 16];
            let enc = encrypt(&key, appid, random, msg.as_bytes())?;
            let raw = STANDARD.decode(&enc)?;
            assert_eq!(raw.len() % 32, 0, "padded to 32-byte blocks");
            let d = decrypt_raw(&key, &enc)?;
            assert_eq!(d.random, random);
            assert_eq!(d.msg, msg.as_bytes());
            assert_eq!(decrypt(&key, appid, &enc)?, msg);
        }
        Ok(())
    }

    #[test]
    fn an_aligned_plaintext_gets_a_full_padding_block() {
        let mut buf = vec![7u8; 64];
        pad32(&mut buf);
        assert_eq!(buf.len(), 96);
        assert!(buf[64..].iter().all(|&b| b == 32));
        assert_eq!(unpad32(&buf), Some(&[7u8; 64][..]));
    }

    /// Broken ciphertexts, each through `decrypt`; (label, encrypt text, expected error code).
    #[test]
    fn broken_ciphertexts_are_typed_errors() -> TestResult {
        let key = decode_aes_key(SAMPLE_KEY)?;
        let appid = VA_APPID;
        let raw = |plain: &[u8]| STANDARD.encode(cbc_encrypt(&key, plain));
        let header = |len: u32| {
            let mut v = b"0123456789abcdef".to_vec();
            v.extend_from_slice(&len.to_be_bytes());
            v
        };
        // A plaintext whose length field claims more than there is.
        let mut too_long = header(1000);
        too_long.extend_from_slice(b"hi");
        too_long.extend_from_slice(appid.as_bytes());
        pad32(&mut too_long);
        // A plaintext shorter than its 20-byte header once unpadded.
        let mut short = b"0123456789".to_vec();
        pad32(&mut short);
        // Pad byte 0, pad byte 33, inconsistent pad bytes.
        let mut zero_pad = header(0);
        zero_pad.resize(32, 0);
        let mut pad33 = header(0);
        pad33.resize(64, 33);
        let mut uneven = header(0);
        uneven.resize(32, 12);
        if let Some(b) = uneven.get_mut(25) {
            *b = 11;
        }
        let truncated = &VA_A1[..VA_A1.len() - 24];

        let cases: Vec<(&str, String, &str)> = vec![
            ("not base64", "not*base64!".to_string(), "decrypt_failed"),
            ("empty", String::new(), "decrypt_failed"),
            ("15 bytes", STANDARD.encode([1u8; 15]), "decrypt_failed"),
            (
                "not a multiple of 16",
                STANDARD.encode([1u8; 40]),
                "decrypt_failed",
            ),
            ("truncated base64", truncated.to_string(), "decrypt_failed"),
            (
                "16 zero bytes",
                "AAAAAAAAAAAAAAAAAAAAAA==".to_string(),
                "decrypt_failed",
            ),
            (
                "length field beyond buffer",
                raw(&too_long),
                "decrypt_failed",
            ),
            ("shorter than header", raw(&short), "decrypt_failed"),
            ("pad byte zero", raw(&zero_pad), "decrypt_failed"),
            ("pad byte 33", raw(&pad33), "decrypt_failed"),
            ("uneven padding", raw(&uneven), "decrypt_failed"),
            (
                "other app id",
                encrypt(&key, "wx0000000000000000", [0; 16], b"x")?,
                "app_id_mismatch",
            ),
            (
                "app id prefix",
                encrypt(&key, "wxb11529c136998cb", [0; 16], b"x")?,
                "app_id_mismatch",
            ),
            (
                "not UTF-8",
                encrypt(&key, appid, [0; 16], &[0xff, 0xfe])?,
                "invalid_utf8",
            ),
        ];
        for (label, enc, code) in cases {
            match decrypt(&key, appid, &enc) {
                Err(e) => assert_eq!(e.code(), code, "{label}: {e}"),
                Ok(m) => panic!("{label}: decrypted to {m:?}"),
            }
        }
        Ok(())
    }

    #[test]
    fn a_plus_turned_into_a_space_still_decrypts() -> TestResult {
        let key = decode_aes_key(SAMPLE_KEY)?;
        let mangled = VA_A1.replace('+', " ");
        assert_eq!(decrypt(&key, VA_APPID, &mangled)?, "我是中文abcd123");
        Ok(())
    }
}
