//! Naming and value rules: which environment, variable and client names and
//! which values the store accepts (docs/protocol.md "Names and values").

use serde_json::Value;

use crate::protocol::{MAX_CLIENT_NAME_LEN, MAX_ENV_NAME_LEN, MAX_VAR_NAME_LEN, RESERVED_NAMES};

/// Why a name was refused (the text completes "... must ...").
pub fn check_environment_name(name: &str) -> Result<(), &'static str> {
    check(name, MAX_ENV_NAME_LEN, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
    })
    .map_err(|()| "be 1 to 64 characters from A-Z a-z 0-9 _ . - and not a reserved name (*, __proto__, constructor, prototype)")
}

/// Variable names also allow `:` (CTI keys such as `ATTR:Segment`).
pub fn check_variable_name(name: &str) -> Result<(), &'static str> {
    check(name, MAX_VAR_NAME_LEN, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':')
    })
    .map_err(|()| "be 1 to 128 characters from A-Z a-z 0-9 _ . - : and not a reserved name (__proto__, constructor, prototype)")
}

/// Client names are free text for people (logs, inspector): any characters
/// but control characters, 1 to 128 bytes.
pub fn check_client_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_CLIENT_NAME_LEN || name.chars().any(char::is_control) {
        return Err("be 1 to 128 bytes without control characters");
    }
    Ok(())
}

fn check(name: &str, max: usize, allowed: impl Fn(char) -> bool) -> Result<(), ()> {
    if name.is_empty()
        || name.len() > max
        || !name.chars().all(allowed)
        || RESERVED_NAMES.contains(&name)
    {
        return Err(());
    }
    Ok(())
}

/// The size a value counts for: the length of its JSON text. `None` when the
/// value is not a scalar (objects and arrays are refused).
pub fn scalar_size(value: &Value) -> Option<usize> {
    match value {
        Value::Null => Some(4),
        Value::Bool(b) => Some(if *b { 4 } else { 5 }),
        Value::Number(n) => Some(n.to_string().len()),
        // Serializing a string cannot fail; the fallback only keeps this total.
        Value::String(_) => Some(serde_json::to_string(value).map_or(usize::MAX, |s| s.len())),
        Value::Array(_) | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn environment_names() {
        for ok in ["VOICE", "a", "crm-1.tab_2", &"x".repeat(64)] {
            assert!(check_environment_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "*",
            "__proto__",
            "constructor",
            "prototype",
            "a b",
            "a:b",
            "é",
            &"x".repeat(65),
        ] {
            assert!(check_environment_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn variable_names() {
        for ok in ["GEN_T2P", "ATTR:Segment", "a.b-c", &"x".repeat(128)] {
            assert!(check_variable_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "*", "__proto__", "a b", "a/b", &"x".repeat(129)] {
            assert!(check_variable_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn client_names() {
        assert!(check_client_name("CRM tab é").is_ok());
        assert!(check_client_name("").is_err());
        assert!(check_client_name("a\nb").is_err());
        assert!(check_client_name(&"x".repeat(129)).is_err());
    }

    #[test]
    fn sizes_are_json_text_lengths() {
        assert_eq!(scalar_size(&json!(null)), Some(4));
        assert_eq!(scalar_size(&json!(false)), Some(5));
        assert_eq!(scalar_size(&json!(12.5)), Some(4));
        assert_eq!(scalar_size(&json!("a\"b")), Some(6));
        assert_eq!(scalar_size(&json!([1])), None);
        assert_eq!(scalar_size(&json!({"a": 1})), None);
    }
}
