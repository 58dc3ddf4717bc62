//! A deliberately small, hostile-input-safe reader and writer for WeChat's flat `<xml>` messages.
//!
//! WeChat messages are one `<xml>` root with leaf children (`<ToUserName>`, `<Content>`...). We
//! keep only those direct children as (name, text) pairs, and refuse everything that a message
//! never needs and an attacker loves: DOCTYPE (so no entity can ever be declared, let alone
//! expanded: no XXE, no billion laughs), processing instructions, deep nesting, content outside
//! the root.

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::AdapterError;

/// Deepest element nesting accepted (root = 1). Real pushes use 2, some events 3 or 4.
pub const MAX_DEPTH: usize = 8;

/// The direct children of the `<xml>` root as (element name, text) pairs, in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// The text of the first direct child with this exact name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The text of the first child with this name, or `""`.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }

    /// The text of the first child with this name when it is not blank.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    /// Every text of the direct children with this exact name, in document order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All pairs, in document order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// Removes characters that XML 1.0 forbids (C0 controls other than tab, LF, CR; U+FFFE, U+FFFF).
/// WeChat sometimes sends raw controls such as `\x1d` inside CDATA (WeRoBot #419); a strict
/// parser would then lose a citizen's message, so they are dropped before parsing instead.
pub fn strip_illegal(s: &str) -> Cow<'_, str> {
    let illegal = |c: char| {
        (c < '\u{20}' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}')
    };
    if s.chars().any(illegal) {
        Cow::Owned(s.chars().filter(|c| !illegal(*c)).collect())
    } else {
        Cow::Borrowed(s)
    }
}

/// Parses a WeChat `<xml>` document into its direct children. See the module doc for what is
/// refused; every refusal is `InvalidXml`.
pub fn parse(xml: &str) -> Result<Fields, AdapterError> {
    let invalid = |why: &str| AdapterError::InvalidXml(why.to_string());
    let mut reader = Reader::from_str(xml);
    {
        let cfg = reader.config_mut();
        cfg.trim_text(false);
        cfg.check_end_names = true;
        cfg.expand_empty_elements = false;
    }
    let mut fields = Vec::new();
    // The child of the root whose text is being collected.
    let mut current: Option<(String, String)> = None;
    let mut depth = 0usize;
    let mut root_done = false;
    loop {
        let event = reader.read_event().map_err(AdapterError::xml)?;
        match event {
            Event::DocType(_) => return Err(invalid("DOCTYPE is not allowed")),
            Event::PI(_) => return Err(invalid("processing instructions are not allowed")),
            Event::Decl(_) | Event::Comment(_) => {}
            Event::Start(e) => {
                let name = element_name(e.name().as_ref())?;
                open(&mut depth, root_done, &name)?;
                if depth == 2 {
                    current = Some((name, String::new()));
                }
            }
            Event::Empty(e) => {
                let name = element_name(e.name().as_ref())?;
                open(&mut depth, root_done, &name)?;
                if depth == 2 {
                    fields.push((name, String::new()));
                }
                depth = depth.saturating_sub(1);
                root_done = depth == 0;
            }
            Event::End(_) => {
                if depth == 2 {
                    if let Some(field) = current.take() {
                        fields.push(field);
                    }
                }
                depth = depth.saturating_sub(1);
                root_done = depth == 0;
            }
            Event::Text(t) => {
                // Only leaves of the root carry data; deeper text is skipped unread.
                if depth == 2 || depth == 0 {
                    let text = t.unescape().map_err(AdapterError::xml)?;
                    append(&mut current, depth, &text)?;
                }
            }
            Event::CData(c) => {
                if depth == 2 || depth == 0 {
                    let text = c.decode().map_err(AdapterError::xml)?;
                    append(&mut current, depth, &text)?;
                }
            }
            Event::Eof => break,
        }
    }
    if !root_done {
        return Err(invalid("no complete <xml> root element"));
    }
    Ok(Fields(fields))
}

/// Enters an element: checks there is exactly one root, that it is `<xml>`, and the depth bound.
fn open(depth: &mut usize, root_done: bool, name: &str) -> Result<(), AdapterError> {
    if root_done {
        return Err(AdapterError::InvalidXml(
            "content after the root element".into(),
        ));
    }
    *depth += 1;
    if *depth > MAX_DEPTH {
        return Err(AdapterError::InvalidXml(format!(
            "elements nested deeper than {MAX_DEPTH}"
        )));
    }
    if *depth == 1 && name != "xml" {
        return Err(AdapterError::InvalidXml(format!(
            "root element is <{name}>, not <xml>"
        )));
    }
    Ok(())
}

/// Adds text to the child being collected; text outside the root must be blank.
fn append(
    current: &mut Option<(String, String)>,
    depth: usize,
    text: &str,
) -> Result<(), AdapterError> {
    if depth == 0 {
        if text.trim().is_empty() {
            return Ok(());
        }
        return Err(AdapterError::InvalidXml(
            "text outside the root element".into(),
        ));
    }
    if let Some((_, value)) = current {
        // Character references such as `&#1;` can reintroduce illegal characters.
        value.push_str(&strip_illegal(text));
    }
    Ok(())
}

fn element_name(raw: &[u8]) -> Result<String, AdapterError> {
    std::str::from_utf8(raw)
        .map(str::to_string)
        .map_err(|_| AdapterError::InvalidUtf8)
}

/// Appends `s` as CDATA. A `]]>` inside would end the section early, so it is split across two
/// sections: `]]]]><![CDATA[>` (the `]]` closes the first, the `>` opens the second).
pub fn push_cdata(out: &mut String, s: &str) {
    out.push_str("<![CDATA[");
    out.push_str(&s.replace("]]>", "]]]]><![CDATA[>"));
    out.push_str("]]>");
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn reads_direct_children_text_and_cdata() -> TestResult {
        let f = parse(
            "<?xml version=\"1.0\"?>\n<xml>\n <A><![CDATA[a & <b>]]></A><B>x &amp; y</B><C/>\
             <D><Inner>skipped</Inner></D><E><![CDATA[one]]]]><![CDATA[>two]]></E><!-- c --></xml>\n",
        )?;
        assert_eq!(f.get("A"), Some("a & <b>"));
        assert_eq!(f.get("B"), Some("x & y"));
        assert_eq!(f.get("C"), Some(""));
        assert_eq!(f.get("D"), Some(""));
        assert_eq!(f.get("E"), Some("one]]>two"));
        assert_eq!(f.get("Inner"), None);
        assert_eq!(f.get("missing"), None);
        assert_eq!(f.text("missing"), "");
        Ok(())
    }

    #[test]
    fn cdata_writer_splits_the_terminator_and_reads_back() -> TestResult {
        for s in ["", "plain", "a]]>b", "]]>", "]]>]]>", "]]]>>", "x]]"] {
            let mut xml = String::from("<xml><C>");
            push_cdata(&mut xml, s);
            xml.push_str("</C></xml>");
            assert_eq!(parse(&xml)?.get("C"), Some(s), "{xml}");
        }
        let mut out = String::new();
        push_cdata(&mut out, "a]]>b");
        assert_eq!(out, "<![CDATA[a]]]]><![CDATA[>b]]>");
        Ok(())
    }

    #[test]
    fn illegal_control_characters_are_stripped() {
        assert_eq!(
            strip_illegal("a\u{1d}b\u{0}c\td\ne\rf\u{fffe}"),
            "abc\td\ne\rf"
        );
        assert!(matches!(strip_illegal("clean 中文"), Cow::Borrowed(_)));
    }

    /// Hostile or broken documents; every one is `InvalidXml` (or `InvalidUtf8` for names).
    #[test]
    fn hostile_documents_are_refused() {
        let lol = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">\
                   <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\
                   <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>\
                   <xml><Content>&lol3;</Content></xml>";
        let deep = format!("<xml>{}x{}</xml>", "<a>".repeat(8), "</a>".repeat(8));
        let cases: &[(&str, &str)] = &[
            (
                "XXE",
                "<!DOCTYPE xml [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><xml><Content>&xxe;</Content></xml>",
            ),
            ("billion laughs", lol),
            ("plain doctype", "<!DOCTYPE xml><xml></xml>"),
            ("undeclared entity", "<xml><Content>&xxe;</Content></xml>"),
            ("bare ampersand", "<xml><Content>a & b</Content></xml>"),
            ("entity outside doctype", "<!ENTITY x \"y\"><xml/>"),
            ("processing instruction", "<xml><?php evil() ?></xml>"),
            ("too deep", &deep),
            ("wrong root", "<html><body/></html>"),
            ("two roots", "<xml></xml><xml></xml>"),
            ("text after root", "<xml></xml>junk"),
            ("unclosed", "<xml><Content>hi</Content>"),
            ("mismatched end", "<xml><A>1</B></xml>"),
            ("empty", ""),
            ("json", "{\"MsgType\":\"text\"}"),
        ];
        for (label, body) in cases {
            match parse(body) {
                Err(AdapterError::InvalidXml(_)) => {}
                other => panic!("{label}: expected InvalidXml, got {other:?}"),
            }
        }
    }

    #[test]
    fn depth_up_to_the_bound_is_fine() -> TestResult {
        let ok = format!("<xml>{}x{}</xml>", "<a>".repeat(7), "</a>".repeat(7));
        assert_eq!(parse(&ok)?.get("a"), Some(""));
        let ok_empty = format!("<xml>{}<b/>{}</xml>", "<a>".repeat(6), "</a>".repeat(6));
        assert!(parse(&ok_empty).is_ok());
        let too_deep = format!("<xml>{}<b/>{}</xml>", "<a>".repeat(7), "</a>".repeat(7));
        assert!(parse(&too_deep).is_err());
        Ok(())
    }

    #[test]
    fn empty_root_is_a_document_without_fields() -> TestResult {
        assert_eq!(parse("<xml/>")?, Fields::default());
        assert_eq!(parse("<xml></xml>")?, Fields::default());
        Ok(())
    }
}
