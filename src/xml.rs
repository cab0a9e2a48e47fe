//! The v1 XML form of the context (reference §2.3.2.3 `LoadXML`,
//! `RetrieveXML`, `RetrieveEnvironmentXML`; docs/protocol.md "XML shape"):
//! reading a document into typed writes with quick-xml, and writing
//! environments out. Pure text in, values out: no store, no I/O. The hub
//! feeds what `parse` returns to the same atomic bulk write as `setAllJSON`.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde_json::{Map, Value};

use crate::store::names;

/// Root element `RetrieveXML` writes and `LoadXML` looks for by default.
pub const DEFAULT_ROOT: &str = "context";
/// Element holding one environment (attribute `name`).
pub const ENVIRONMENT_TAG: &str = "environment";
/// Element holding one variable (attribute `name`); any other element name
/// inside the root or an environment is the v1 flat form `<ANI>...</ANI>`.
pub const VARIABLE_TAG: &str = "variable";
/// Longest `prefix` accepted, in bytes (prefixed names must still be valid
/// variable names, so anything longer could never succeed).
pub const MAX_PREFIX_LEN: usize = 127;

/// Why a document was refused, with where (1-based line and column, in
/// characters) so the integrator can find it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("XML line {line}, column {column}: {message}")]
pub struct XmlError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What is wrong and what is expected.
    pub message: String,
}

/// What `LoadXML` asks for besides the document.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions<'a> {
    /// Element whose content is loaded (first one in document order); empty
    /// means [`DEFAULT_ROOT`].
    pub root: &'a str,
    /// Prepended to every variable name (v1 `strPrefix`); may be empty.
    pub prefix: &'a str,
    /// Environment of variables that are not inside an `<environment>`
    /// element (the v1 ActiveX was bound to one environment).
    pub environment: Option<&'a str>,
}

/// A parsed document: the environments it names, in document order, and
/// every variable as `(environment, name, value)` in document order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// Environments named (also empty ones), first appearance order, no duplicates.
    pub environments: Vec<String>,
    /// The writes, in document order.
    pub writes: Vec<(String, String, Value)>,
}

/// The type of a variable's text (attribute `type`, default `string`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Number,
    Boolean,
    Null,
}

/// A variable being read.
struct OpenVar {
    environment: String,
    name: String,
    kind: Kind,
    /// `encoding="json"`: the text is the JSON text of the value.
    json: bool,
    text: String,
    /// Where the element started, for errors about its value.
    at: u64,
}

/// Where the reader is.
enum Place {
    /// Before the root element; the depth of open elements.
    Outside(usize),
    /// Directly inside the root element (the depth of elements around it).
    Root(usize),
    /// Inside `<environment name=...>` (the depth around the root).
    Environment(String, usize),
    /// Inside a variable element.
    Variable(OpenVar, Box<Place>),
    /// After the root element closed; the depth of open elements.
    After(usize),
}

/// Reads `xml` as described in docs/protocol.md: every variable under the
/// first element named `opts.root`, typed, with `opts.prefix` before its name.
/// Nothing is validated against the store here except names (so errors can
/// say where); sizes and counts are the store's job.
pub fn parse(xml: &str, opts: &LoadOptions<'_>) -> Result<Loaded, XmlError> {
    let root = if opts.root.is_empty() {
        DEFAULT_ROOT
    } else {
        opts.root
    };
    if opts.prefix.len() > MAX_PREFIX_LEN || opts.prefix.chars().any(char::is_control) {
        return Err(at(
            xml,
            0,
            format!("prefix must be at most {MAX_PREFIX_LEN} bytes without control characters"),
        ));
    }
    let mut reader = Reader::from_str(xml);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    config.expand_empty_elements = false;
    let mut out = Loaded::default();
    let mut place = Place::Outside(0);
    let mut found = false;
    loop {
        let start = reader.buffer_position();
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => return Err(at(xml, reader.error_position(), e.to_string())),
        };
        match event {
            Event::Eof => break,
            Event::DocType(_) => {
                return Err(at(
                    xml,
                    start,
                    "a DOCTYPE is not allowed (no DTDs, no custom entities)".into(),
                ))
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Start(e) => {
                place = open(
                    xml, start, &e, false, place, root, opts, &mut out, &mut found,
                )?;
            }
            Event::Empty(e) => {
                place = open(
                    xml, start, &e, true, place, root, opts, &mut out, &mut found,
                )?;
            }
            Event::End(_) => place = close(xml, place, &mut out)?,
            Event::Text(t) => {
                let text = t
                    .xml10_content()
                    .map_err(|e| at(xml, start, e.to_string()))?;
                place = text_in(xml, start, place, &text)?;
            }
            Event::CData(c) => {
                let text = c.decode().map_err(|e| at(xml, start, e.to_string()))?;
                place = match place {
                    Place::Variable(mut v, parent) => {
                        v.text.push_str(&text);
                        Place::Variable(v, parent)
                    }
                    p @ (Place::Outside(_) | Place::After(_)) => p,
                    p if text.trim().is_empty() => p,
                    _ => return Err(at(
                        xml,
                        start,
                        "text outside a variable element; put it inside <variable name=\"...\">"
                            .into(),
                    )),
                };
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = r.decode().map_err(|e| at(xml, start, e.to_string()))?;
                        match quick_xml::escape::resolve_predefined_entity(&name) {
                            Some(s) => s.to_string(),
                            None => {
                                return Err(at(
                                    xml,
                                    start,
                                    format!("unknown entity &{name}; (only &amp; &lt; &gt; &quot; &apos; and character references)"),
                                ))
                            }
                        }
                    }
                    Err(e) => return Err(at(xml, start, e.to_string())),
                };
                place = text_in(xml, start, place, &resolved)?;
            }
        }
    }
    match place {
        Place::After(0) => Ok(out),
        Place::Outside(0) => Err(at(
            xml,
            xml.len() as u64,
            format!("no <{root}> element in the document"),
        )),
        _ => Err(at(
            xml,
            xml.len() as u64,
            "the document ends inside an element".into(),
        )),
    }
}

/// An element starts (`empty`: it also ends, `<x/>`).
#[allow(clippy::too_many_arguments)]
fn open(
    xml: &str,
    start: u64,
    e: &BytesStart<'_>,
    empty: bool,
    place: Place,
    root: &str,
    opts: &LoadOptions<'_>,
    out: &mut Loaded,
    found: &mut bool,
) -> Result<Place, XmlError> {
    let tag = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    match place {
        Place::Outside(depth) if tag == root && !*found => {
            *found = true;
            if empty {
                Ok(Place::After(depth))
            } else {
                Ok(Place::Root(depth))
            }
        }
        Place::Outside(depth) => Ok(Place::Outside(if empty { depth } else { depth + 1 })),
        Place::After(depth) => Ok(Place::After(if empty { depth } else { depth + 1 })),
        Place::Root(depth) if tag == ENVIRONMENT_TAG => {
            let name = attribute(xml, start, e, "name")?
                .ok_or_else(|| at(xml, start, "<environment> needs a name attribute".into()))?;
            names::check_environment_name(&name).map_err(|rule| {
                at(
                    xml,
                    start,
                    format!("environment name {name:?} is invalid: it must {rule}"),
                )
            })?;
            if !out.environments.contains(&name) {
                out.environments.push(name.clone());
            }
            if empty {
                Ok(Place::Root(depth))
            } else {
                Ok(Place::Environment(name, depth))
            }
        }
        Place::Root(depth) => {
            let Some(env) = opts.environment else {
                return Err(at(
                    xml,
                    start,
                    format!("<{tag}> is not inside an <environment name=\"...\"> element and the request names no environment"),
                ));
            };
            if !out.environments.iter().any(|n| n == env) {
                out.environments.push(env.to_string());
            }
            variable(
                xml,
                start,
                e,
                &tag,
                empty,
                env,
                Place::Root(depth),
                out,
                opts.prefix,
            )
        }
        Place::Environment(env, depth) => {
            if tag == ENVIRONMENT_TAG {
                return Err(at(xml, start, "environments do not nest".into()));
            }
            let parent = Place::Environment(env.clone(), depth);
            variable(xml, start, e, &tag, empty, &env, parent, out, opts.prefix)
        }
        Place::Variable(v, _) => Err(at(
            xml,
            start,
            format!(
                "variable {:?} holds text only, not the element <{tag}>",
                v.name
            ),
        )),
    }
}

/// A variable element starts: `<variable name="N" type="T">` or the flat `<N>`.
#[allow(clippy::too_many_arguments)]
fn variable(
    xml: &str,
    start: u64,
    e: &BytesStart<'_>,
    tag: &str,
    empty: bool,
    env: &str,
    parent: Place,
    out: &mut Loaded,
    prefix: &str,
) -> Result<Place, XmlError> {
    let bare = if tag == VARIABLE_TAG {
        attribute(xml, start, e, "name")?
            .ok_or_else(|| at(xml, start, "<variable> needs a name attribute".into()))?
    } else {
        tag.to_string()
    };
    let name = format!("{prefix}{bare}");
    names::check_variable_name(&name).map_err(|rule| {
        at(
            xml,
            start,
            format!("variable name {name:?} is invalid: it must {rule}"),
        )
    })?;
    let kind = match attribute(xml, start, e, "type")?.as_deref() {
        None | Some("string") => Kind::String,
        Some("number") => Kind::Number,
        Some("boolean") => Kind::Boolean,
        Some("null") => Kind::Null,
        Some(other) => {
            return Err(at(
                xml,
                start,
                format!(
                    "type {other:?} of {name:?} is unknown: use string, number, boolean or null"
                ),
            ))
        }
    };
    let json = match attribute(xml, start, e, "encoding")?.as_deref() {
        None => false,
        Some("json") => true,
        Some(other) => {
            return Err(at(
                xml,
                start,
                format!("encoding {other:?} of {name:?} is unknown: the only one is json"),
            ))
        }
    };
    let v = OpenVar {
        environment: env.to_string(),
        name,
        kind,
        json,
        text: String::new(),
        at: start,
    };
    if empty {
        finish(xml, v, out)?;
        Ok(parent)
    } else {
        Ok(Place::Variable(v, Box::new(parent)))
    }
}

/// An element ends.
fn close(xml: &str, place: Place, out: &mut Loaded) -> Result<Place, XmlError> {
    match place {
        Place::Outside(depth) => Ok(Place::Outside(depth.saturating_sub(1))),
        Place::After(depth) => Ok(Place::After(depth.saturating_sub(1))),
        Place::Root(depth) => Ok(Place::After(depth)),
        Place::Environment(_, depth) => Ok(Place::Root(depth)),
        Place::Variable(v, parent) => {
            finish(xml, v, out)?;
            Ok(*parent)
        }
    }
}

/// Text (or a resolved reference) arrives.
fn text_in(xml: &str, start: u64, place: Place, text: &str) -> Result<Place, XmlError> {
    match place {
        Place::Variable(mut v, parent) => {
            v.text.push_str(text);
            Ok(Place::Variable(v, parent))
        }
        p @ (Place::Outside(_) | Place::After(_)) => Ok(p),
        p if text.trim().is_empty() => Ok(p),
        _ => Err(at(
            xml,
            start,
            "text outside a variable element; put it inside <variable name=\"...\">".into(),
        )),
    }
}

/// A variable element ended: its text becomes a typed value.
fn finish(xml: &str, v: OpenVar, out: &mut Loaded) -> Result<(), XmlError> {
    let bad = |what: &str| {
        at(
            xml,
            v.at,
            format!("the value of {:?} is not {what}", v.name),
        )
    };
    let value = if v.json {
        let value: Value = serde_json::from_str(&v.text).map_err(|_| bad("JSON text"))?;
        let fits = matches!(
            (&value, v.kind),
            (Value::String(_), Kind::String)
                | (Value::Number(_), Kind::Number)
                | (Value::Bool(_), Kind::Boolean)
                | (Value::Null, Kind::Null)
        );
        if !fits {
            return Err(bad("JSON of its type"));
        }
        value
    } else {
        match v.kind {
            Kind::String => Value::String(v.text),
            Kind::Number => match serde_json::from_str::<Value>(v.text.trim()) {
                Ok(n @ Value::Number(_)) => n,
                _ => return Err(bad("a number (JSON syntax, e.g. 42 or -1.5e3)")),
            },
            Kind::Boolean => match v.text.trim() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(bad("true or false")),
            },
            Kind::Null => {
                if !v.text.trim().is_empty() {
                    return Err(bad("empty (type null has no text)"));
                }
                Value::Null
            }
        }
    };
    out.writes.push((v.environment, v.name, value));
    Ok(())
}

/// An attribute's unescaped value, if present.
fn attribute(
    xml: &str,
    start: u64,
    e: &BytesStart<'_>,
    name: &str,
) -> Result<Option<String>, XmlError> {
    for attr in e.attributes() {
        let attr = attr.map_err(|err| at(xml, start, err.to_string()))?;
        if attr.key.as_ref() == name.as_bytes() {
            let value = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|err| at(xml, start, err.to_string()))?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

/// An error at byte `offset` of `xml`, as line and column.
fn at(xml: &str, offset: u64, message: String) -> XmlError {
    let offset = usize::try_from(offset).unwrap_or(usize::MAX).min(xml.len());
    // Back to a character boundary (positions may point inside a character).
    let mut cut = offset;
    while !xml.is_char_boundary(cut) {
        cut -= 1;
    }
    let before = &xml[..cut];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    XmlError {
        line,
        column,
        message,
    }
}

/// The document `RetrieveXML` answers: every given environment, variables
/// in the order given (the store keeps them sorted by name).
pub fn render<'a>(
    environments: impl IntoIterator<Item = (&'a str, &'a Map<String, Value>)>,
) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
    out.push_str(DEFAULT_ROOT);
    out.push_str(">\n");
    for (env, values) in environments {
        out.push_str("  <environment name=\"");
        escape_attribute(&mut out, env);
        if values.is_empty() {
            out.push_str("\"/>\n");
            continue;
        }
        out.push_str("\">\n");
        for (name, value) in values {
            out.push_str("    <variable name=\"");
            escape_attribute(&mut out, name);
            out.push('"');
            match value {
                Value::String(s) if s.chars().all(xml_char) => {
                    out.push('>');
                    escape_text(&mut out, s);
                }
                Value::String(_) => {
                    // XML 1.0 cannot carry these characters at all, not even
                    // as references: the JSON text of the string can.
                    out.push_str(" encoding=\"json\">");
                    escape_text(&mut out, &value.to_string());
                }
                Value::Number(n) => {
                    out.push_str(" type=\"number\">");
                    out.push_str(&n.to_string());
                }
                Value::Bool(b) => {
                    out.push_str(" type=\"boolean\">");
                    out.push_str(if *b { "true" } else { "false" });
                }
                Value::Null => {
                    out.push_str(" type=\"null\"/>\n");
                    continue;
                }
                // The store holds scalars only; never written.
                Value::Array(_) | Value::Object(_) => {
                    out.push_str(" encoding=\"json\">");
                    escape_text(&mut out, &value.to_string());
                }
            }
            out.push_str("</variable>\n");
        }
        out.push_str("  </environment>\n");
    }
    out.push_str("</");
    out.push_str(DEFAULT_ROOT);
    out.push_str(">\n");
    out
}

/// Characters XML 1.0 allows in a document.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Text content: markup escaped, and CR as a reference so parsers do not
/// turn it into LF (XML end-of-line handling).
fn escape_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Attribute values: also quotes, and white space as references (attribute
/// value normalization would turn them into spaces).
fn escape_attribute(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests;
