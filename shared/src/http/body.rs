//! Request bodies: JSON objects read into the handler's type, with the API's rules for what
//! serde alone would let through (arrays as structs, `null` for an optional field) and for
//! numbers (`2.0` is the integer 2, as in JSON Schema).

use lambda_http::Request;
use serde::de::DeserializeOwned;

use super::problem::Problem;

/// The request's JSON body as `T`: 400 with serde's message (field, expected type, position)
/// for anything that is not a valid `T`. (Its size the edge checked, for every route.)
pub fn json_body<T: DeserializeOwned>(request: &Request) -> Result<T, Problem> {
    let bytes: &[u8] = request.body().as_ref();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::bad_request("the request body must be a JSON object"));
    }
    let invalid = |e: serde_json::Error| Problem::bad_request(format!("invalid JSON body: {e}"));
    let whole = whole_numbers(bytes);
    let bytes = whole.as_deref().unwrap_or(bytes);
    // Straight from the bytes first, for errors with their position (and repeated members
    // refused); then again from the document, where an array is no struct (serde would read
    // `[2]` as `{"quantity": 2}`).
    serde_json::from_slice::<T>(bytes).map_err(invalid)?;
    super::objects_only::from_value(serde_json::from_slice(bytes).map_err(invalid)?).map_err(invalid)
}

/// `text` without the white space at its ends, as the HTTP API's `pattern: \S` reads white
/// space. JSON Schema patterns are ECMA-262 regular expressions, whose `\s` is Unicode's
/// White_Space (`char::is_whitespace`) with the BOM and without NEL (U+0085); Python's `\s`
/// also takes U+001C-U+001F, but schemathesis' validator sends "\u{1f}" as a valid name.
/// Blank if nothing is left (`contracts::blank_is_what_the_schemas_pattern_calls_white_space`).
pub fn trim_blank(text: &str) -> &str {
    text.trim_matches(|c: char| c == '\u{feff}' || (c.is_whitespace() && c != '\u{85}'))
}

/// The body with every number of integral value written as an integer (`2.0`, `2.50e1`,
/// `-0.0`), if it has any: JSON Schema counts them as integers, serde's integer fields do
/// not. Rewritten in the text, not through a `Value`, so repeated members stay visible.
fn whole_numbers(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let (mut i, mut copied, mut in_string) = (0, 0, false);
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b != b'-' && !b.is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < bytes.len() && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
            i += 1;
        }
        if let Some(integer) = integral(&bytes[start..i]) {
            let out = out.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
            out.extend_from_slice(&bytes[copied..start]);
            out.extend_from_slice(integer.as_bytes());
            copied = i;
        }
    }
    let mut out = out?;
    out.extend_from_slice(&bytes[copied..]);
    Some(out)
}

/// A JSON number token with a fraction or an exponent, as the integer it equals (`None` if
/// it is not one, is not of integral value, or has more than 40 digits: out of any range).
pub(crate) fn integral(token: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(token).ok()?;
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let valid = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if (fraction.is_empty() && exponent == 0 && !unsigned.contains(['e', 'E']))
        || whole.is_empty()
        || (whole.len() > 1 && whole.starts_with('0'))
        || (mantissa.contains('.') && fraction.is_empty())
        || !valid(whole)
        || !valid(fraction)
    {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let point = i32::try_from(whole.len()).ok()?.checked_add(exponent)?;
    if !(0..=40).contains(&point) {
        return (digits.bytes().all(|b| b == b'0')).then(|| "0".to_owned());
    }
    let point = point as usize;
    let (int_part, rest) = if point <= digits.len() {
        (digits[..point].to_owned(), &digits[point..])
    } else {
        (format!("{digits}{}", "0".repeat(point - digits.len())), "")
    };
    if !rest.bytes().all(|b| b == b'0') {
        return None;
    }
    let int_part = int_part.trim_start_matches('0');
    Some(match (int_part.is_empty(), negative) {
        (true, _) => "0".to_owned(),
        (false, true) => format!("-{int_part}"),
        (false, false) => int_part.to_owned(),
    })
}

/// An optional body field that may be left out but not sent as `null`: `null` is a wrong type
/// (docs/api.md: 400), not "absent". Use as `#[serde(default, deserialize_with = "not_null")]`.
pub fn not_null<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    // Through Option, so that every type (enums too) gets this message rather than its own.
    match <Option<T> as serde::Deserialize>::deserialize(deserializer)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom("null is not a valid value (leave the field out instead)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::Body;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Quantity {
        quantity: u8,
    }

    fn request(body: &str) -> Request {
        Request::new(Body::Text(body.into()))
    }

    #[tokio::test]
    async fn bad_bodies_are_400_and_big_ones_413() {
        for body in ["", "  ", "{", "[]", r#"{"quantity": "3"}"#, r#"{"quantity": 300}"#, r#"{}"#] {
            let err = json_body::<Quantity>(&request(body)).unwrap_err();
            assert_eq!(err.status, 400, "{body:?}");
        }
        // The size is the edge's to check, before any handler reads the body.
        let read = |request: Request| async move {
            json_body::<Quantity>(&request).map(|q| crate::http::Reply::ok(&q.quantity))
        };
        let big = format!(r#"{{"quantity": 1, "pad": "{}"}}"#, "x".repeat(crate::http::MAX_BODY_BYTES));
        assert_eq!(crate::http::handle(&read, request(&big)).await.unwrap().status(), 413);
        assert_eq!(json_body::<Quantity>(&request(r#"{"quantity": 3}"#)).unwrap().quantity, 3);
    }

    #[test]
    fn blank_is_what_the_schemas_white_space_is() {
        assert_eq!(trim_blank(" \t a b \n"), "a b");
        assert_eq!(
            trim_blank("\u{3000}\u{a0}\u{feff}\u{2028}"),
            "",
            "Unicode spaces, BOM and line separators are blank"
        );
        // What schemathesis sent and main refused (ST202, seed 90828734287488384230031391681702855476).
        assert_eq!(trim_blank("\u{1f}"), "\u{1f}", "an ASCII separator is no white space to a JSON Schema validator");
        assert_eq!(trim_blank("\u{85}"), "\u{85}", "nor is NEL");
        assert_eq!(trim_blank("\u{200b}"), "\u{200b}", "a zero-width space is not white space");
    }

    /// JSON Schema's integers include `2.0` (schemathesis ST202 found `{"quantity": 28.0}` refused).
    #[test]
    fn numbers_of_integral_value_are_integers() {
        for (body, quantity) in [
            (r#"{"quantity": 28.0}"#, 28),
            (r#"{"quantity":2.000}"#, 2),
            (r#"{"quantity": 2.5e1}"#, 25),
            (r#"{"quantity": 250E-1}"#, 25),
            (r#"{"quantity": 0.0}"#, 0),
            (r#"{"quantity": -0.0e3}"#, 0),
        ] {
            assert_eq!(json_body::<Quantity>(&request(body)).map(|q| q.quantity), Ok(quantity), "{body}");
        }
        for body in [
            r#"{"quantity": 2.5}"#,
            r#"{"quantity": 300.0}"#,
            r#"{"quantity": -1.0}"#,
            r#"{"quantity": 1e400}"#,
            r#"{"quantity": 02.0}"#,
            r#"{"quantity": 2.}"#,
            r#"{"quantity": 2.0, "quantity": 3.0}"#,
        ] {
            assert_eq!(json_body::<Quantity>(&request(body)).unwrap_err().status, 400, "{body}");
        }
        // Inside strings nothing changes.
        assert_eq!(whole_numbers(br#"{"a": "2.0", "b\"": "\"3.0"}"#), None);
        assert_eq!(
            whole_numbers(br#"{"a": "x", "n": [1.0, 2, 3.10, 4e2]}"#).unwrap(),
            br#"{"a": "x", "n": [1, 2, 3.10, 400]}"#
        );
        assert_eq!(integral(b"123456789012345678901234567890.0").as_deref(), Some("123456789012345678901234567890"));
    }

    #[test]
    fn an_array_is_not_an_object_at_any_depth() {
        // Found by fuzzing: serde reads a struct from an array of its fields' values.
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Lines {
            lines: Vec<Quantity>,
        }
        assert_eq!(json_body::<Quantity>(&request("[3]")).unwrap_err().status, 400);
        assert_eq!(json_body::<Lines>(&request(r#"{"lines": [[3]]}"#)).unwrap_err().status, 400);
        assert_eq!(json_body::<Lines>(&request(r#"{"lines": [{"quantity": 3}]}"#)).unwrap().lines.len(), 1);
        let repeated = json_body::<Quantity>(&request(r#"{"quantity": 3, "quantity": 4}"#)).unwrap_err();
        assert!(repeated.detail.contains("duplicate field"), "{}", repeated.detail);
    }

    #[test]
    fn optional_fields_may_be_left_out_but_not_null() {
        #[derive(Debug, Deserialize)]
        struct Note {
            #[serde(default, deserialize_with = "not_null")]
            text: Option<String>,
        }
        assert_eq!(json_body::<Note>(&request("{}")).unwrap().text, None);
        assert_eq!(json_body::<Note>(&request(r#"{"text": "hi"}"#)).unwrap().text.as_deref(), Some("hi"));
        assert_eq!(json_body::<Note>(&request(r#"{"text": null}"#)).unwrap_err().status, 400);
    }
}
