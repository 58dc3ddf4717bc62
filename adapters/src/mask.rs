//! Masking of personal data for logs, metrics and events (art. 11, 29).

use crate::IdentityKind;

/// Masks a phone number: keeps the first three and last four digits of a mobile number
/// (`138****0000`); shorter numbers keep only their last two.
pub fn mask_phone(p: &str) -> String {
    let chars: Vec<char> = p.chars().collect();
    let n = chars.len();
    if n >= 11 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[n - 4..].iter().collect();
        format!("{head}****{tail}")
    } else if n > 2 {
        let tail: String = chars[n - 2..].iter().collect();
        format!("{}{tail}", "*".repeat(n - 2))
    } else {
        "*".repeat(n)
    }
}

/// Masks an email: first character of the local part, then `***@domain`.
pub fn mask_email(e: &str) -> String {
    match e.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

/// Masks an opaque id (openid, uid): first four characters, `***`, last two.
pub fn mask_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 6 {
        return "***".to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}***{tail}")
}

/// Masks an IPv4 address's last octet (`203.0.113.*`) or an IPv6 address after its first
/// two groups.
pub fn mask_ip(ip: &str) -> String {
    if let Some((net, _)) = ip.rsplit_once('.') {
        format!("{net}.*")
    } else {
        let groups: Vec<&str> = ip.split(':').take(2).collect();
        format!("{}:*", groups.join(":"))
    }
}

/// Masks an identity value according to its kind.
pub fn mask_value(kind: IdentityKind, value: &str) -> String {
    match kind {
        IdentityKind::Phone => mask_phone(value),
        IdentityKind::Email => mask_email(value),
        IdentityKind::Wechat | IdentityKind::Weibo => mask_id(value),
        IdentityKind::Ip => mask_ip(value),
        IdentityKind::Cti => match value.split_once(':') {
            Some((profile, id)) => format!("{profile}:{}", mask_id(id)),
            None => mask_id(value),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_hide_the_middle() {
        assert_eq!(mask_phone("13800001234"), "138****1234");
        assert_eq!(mask_phone("12345"), "***45");
        assert_eq!(mask_email("alice@example.cn"), "a***@example.cn");
        assert_eq!(mask_id("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"), "oUpF***6o");
        assert_eq!(mask_ip("203.0.113.9"), "203.0.113.*");
        assert_eq!(mask_ip("2001:db8::1"), "2001:db8:*");
    }
}
