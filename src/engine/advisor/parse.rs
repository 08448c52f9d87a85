//! Reading the model's reply. The contract is ONE JSON object with
//! [`REQUIRED_KEYS`]; models wrap it in code fences, put prose around it, write several objects,
//! quote numbers or write `3.0` for 3. This finds the object that has the required keys, coerces
//! those lenient types and validates the ranges. Errors are sentences the model can act on: they
//! are fed back to it on the next attempt.

use serde_json::{Map, Value};

use crate::engine::record::one_line;

/// The keys the reply must have.
pub const REQUIRED_KEYS: [&str; 5] =
    ["recommended_replicas", "predicted_cpu_millicores", "predicted_memory_mebibytes", "confidence", "reasoning"];

/// Longest `reasoning` kept (characters); longer text is cut and ends with `…`.
pub const REASONING_MAX_CHARS: usize = 500;

/// Replies longer than this are only searched in their first part (bytes).
const MAX_REPLY_BYTES: usize = 64 * 1024;
/// At most this many `{` are tried as the start of an object.
const MAX_CANDIDATES: usize = 256;

/// A valid answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// As the model wrote it (≥ 1); the advisor clamps it to [min, max].
    pub replicas: i32,
    pub predicted_cpu_millicores: f64,
    pub predicted_memory_mebibytes: f64,
    /// 0..=1.
    pub confidence: f64,
    /// One line, control characters and escape sequences removed, at most
    /// [`REASONING_MAX_CHARS`] characters.
    pub reasoning: String,
}

/// Find, coerce and validate the answer in a reply.
pub fn parse_reply(text: &str) -> Result<Answer, String> {
    let text = cut_at_char_boundary(text, MAX_REPLY_BYTES);
    let (objects, first_error) = json_objects(text);
    let mut candidates: Vec<&Map<String, Value>> = Vec::new();
    for o in &objects {
        collect_objects(o, &mut candidates);
    }
    let complete: Vec<&Map<String, Value>> =
        candidates.iter().copied().filter(|o| REQUIRED_KEYS.iter().all(|k| o.contains_key(*k))).collect();
    let mut first_invalid = None;
    for o in &complete {
        match validate(o) {
            Ok(a) => return Ok(a),
            Err(e) => {
                first_invalid.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_invalid {
        return Err(e);
    }
    // No object with every key: name what is missing in the closest one.
    let best = candidates.iter().max_by_key(|o| REQUIRED_KEYS.iter().filter(|k| o.contains_key(**k)).count());
    match best {
        Some(o) if REQUIRED_KEYS.iter().any(|k| o.contains_key(*k)) => {
            let missing: Vec<&str> = REQUIRED_KEYS.iter().copied().filter(|k| !o.contains_key(*k)).collect();
            Err(format!("the JSON object lacks {}", missing.join(", ")))
        }
        Some(_) => Err(format!("the JSON object has none of the required keys ({})", REQUIRED_KEYS.join(", "))),
        None => match first_error {
            Some(e) => Err(format!("invalid JSON: {e}")),
            None if text.trim().is_empty() => Err("the reply is empty".into()),
            None => Err("no JSON object found in the reply".into()),
        },
    }
}

fn cut_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Every top-level JSON object in the text, in order (fences and prose are simply skipped), and
/// the parse error of the first `{` that did not start a valid value. A reply that is one JSON
/// string holding an object (double-encoded JSON mode) is unwrapped.
fn json_objects(text: &str) -> (Vec<Value>, Option<String>) {
    if let Ok(Value::String(inner)) = serde_json::from_str::<Value>(text.trim()) {
        return json_objects(&inner);
    }
    let mut objects = Vec::new();
    let mut first_error = None;
    let mut pos = 0;
    let mut tries = 0;
    while let Some(off) = text[pos..].find('{') {
        let start = pos + off;
        tries += 1;
        if tries > MAX_CANDIDATES {
            break;
        }
        let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(v)) => {
                objects.push(v);
                pos = start + stream.byte_offset().max(1);
            }
            Some(Err(e)) => {
                first_error.get_or_insert_with(|| e.to_string());
                pos = start + 1;
            }
            None => pos = start + 1,
        }
    }
    (objects, first_error)
}

/// The objects in a value, outer first (a reply may nest the answer, e.g. `{"answer": {…}}`).
fn collect_objects<'a>(v: &'a Value, out: &mut Vec<&'a Map<String, Value>>) {
    match v {
        Value::Object(m) => {
            out.push(m);
            for x in m.values() {
                collect_objects(x, out);
            }
        }
        Value::Array(xs) => xs.iter().for_each(|x| collect_objects(x, out)),
        _ => {}
    }
}

fn describe(v: &Value) -> String {
    let s = match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "an object".to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
    };
    one_line(&s).chars().take(40).collect()
}

/// A number, or a string holding one (finite).
fn number(key: &str, v: &Value) -> Result<f64, String> {
    let x = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match x {
        Some(x) if x.is_finite() => Ok(x),
        _ => Err(format!("{key} must be a number, got {}", describe(v))),
    }
}

pub fn whole_number(key: &str, v: &Value) -> Result<i64, String> {
    if let Some(n) = v.as_i64() {
        return Ok(n);
    }
    let x = number(key, v)?;
    if x.fract() != 0.0 {
        return Err(format!("{key} must be a whole number, got {}", describe(v)));
    }
    if x.abs() > 1e15 {
        return Err(format!("{key} is out of range: {}", describe(v)));
    }
    Ok(x as i64)
}

fn validate(o: &Map<String, Value>) -> Result<Answer, String> {
    let get = |k: &str| o.get(k).unwrap_or(&Value::Null);
    let replicas = whole_number("recommended_replicas", get("recommended_replicas"))?;
    if replicas < 1 {
        return Err(format!("recommended_replicas must be >= 1, got {replicas}"));
    }
    let replicas = i32::try_from(replicas).map_err(|_| format!("recommended_replicas is out of range: {replicas}"))?;
    let mut predictions = [0.0; 2];
    for (slot, key) in predictions.iter_mut().zip(["predicted_cpu_millicores", "predicted_memory_mebibytes"]) {
        let x = number(key, get(key))?;
        if x < 0.0 {
            return Err(format!("{key} must be >= 0, got {x}"));
        }
        *slot = x;
    }
    let confidence = number("confidence", get("confidence"))?;
    if !(0.0..=1.0).contains(&confidence) {
        return Err(format!("confidence must be between 0 and 1, got {confidence}"));
    }
    let reasoning = match get("reasoning") {
        Value::String(s) => clean_reasoning(s),
        v => return Err(format!("reasoning must be a string, got {}", describe(v))),
    };
    Ok(Answer {
        replicas,
        predicted_cpu_millicores: predictions[0],
        predicted_memory_mebibytes: predictions[1],
        confidence,
        reasoning,
    })
}

/// One line without control characters or escape sequences, at most [`REASONING_MAX_CHARS`].
pub fn clean_reasoning(s: &str) -> String {
    let line = one_line(s);
    if line.chars().count() <= REASONING_MAX_CHARS {
        return line;
    }
    let mut cut: String = line.chars().take(REASONING_MAX_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Streamed text as it may reach a screen: escape sequences and control characters removed,
/// except line breaks (tabs become spaces).
pub fn clean_stream_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, true),
            None => (line, false),
        };
        // `one_line` removes escapes and controls but also trims and collapses spaces; keep the
        // spaces between tokens by protecting the ends.
        let lead = body.len() - body.trim_start_matches([' ', '\t']).len();
        let trail = body.len() - body.trim_end_matches([' ', '\t', '\r']).len();
        if lead > 0 {
            out.push(' ');
        }
        let inner = one_line(body);
        out.push_str(&inner);
        if trail > 0 && !inner.is_empty() {
            out.push(' ');
        }
        if nl {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"recommended_replicas": 4, "predicted_cpu_millicores": 55.5,
        "predicted_memory_mebibytes": 40, "confidence": 0.8, "reasoning": "load is rising"}"#;

    fn ok(text: &str) -> Answer {
        parse_reply(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn plain_object() {
        let a = ok(GOOD);
        assert_eq!(a.replicas, 4);
        assert_eq!(a.predicted_cpu_millicores, 55.5);
        assert_eq!(a.predicted_memory_mebibytes, 40.0);
        assert_eq!(a.confidence, 0.8);
        assert_eq!(a.reasoning, "load is rising");
    }

    #[test]
    fn fences_and_prose_around() {
        assert_eq!(ok(&format!("```json\n{GOOD}\n```")).replicas, 4);
        assert_eq!(ok(&format!("Sure! Here is my answer:\n\n```\n{GOOD}\n```\nHope it helps {{:)")).replicas, 4);
        assert_eq!(ok(&format!("<think>the {{trend}} is up</think>{GOOD} done.")).replicas, 4);
    }

    #[test]
    fn several_objects_take_the_one_with_the_keys() {
        let text = format!(r#"Metrics: {{"cpu": 50, "pods": 3}}. Answer: {GOOD} Also {{"note": "x"}}"#);
        assert_eq!(ok(&text).replicas, 4);
        // Nested under another key.
        assert_eq!(ok(&format!(r#"{{"answer": {GOOD}}}"#)).replicas, 4);
        // The first complete object is invalid, the second is fine.
        let bad = GOOD.replace(": 4,", ": 0,");
        assert_eq!(ok(&format!("{bad}\n{}", GOOD.replace(": 4,", ": 6,"))).replicas, 6);
    }

    #[test]
    fn numbers_as_strings_and_integral_floats() {
        let a = ok(r#"{"recommended_replicas": "5", "predicted_cpu_millicores": "61.25",
            "predicted_memory_mebibytes": " 30 ", "confidence": "0.5", "reasoning": "x"}"#);
        assert_eq!((a.replicas, a.predicted_cpu_millicores, a.predicted_memory_mebibytes), (5, 61.25, 30.0));
        assert_eq!(ok(&GOOD.replace(": 4,", ": 3.0,")).replicas, 3);
        assert_eq!(ok(&GOOD.replace(": 4,", r#": "7.0","#)).replicas, 7);
        // Double-encoded: the reply is a JSON string holding the object.
        let encoded = serde_json::to_string(GOOD).expect("string");
        assert_eq!(ok(&encoded).replicas, 4);
    }

    #[test]
    fn wrong_types_are_named() {
        let e = parse_reply(&GOOD.replace(": 4,", r#": "four","#)).expect_err("type");
        assert_eq!(e, r#"recommended_replicas must be a number, got "four""#);
        let e = parse_reply(&GOOD.replace(": 4,", ": 3.5,")).expect_err("fraction");
        assert_eq!(e, "recommended_replicas must be a whole number, got 3.5");
        let e = parse_reply(&GOOD.replace(r#""load is rising""#, "42")).expect_err("reasoning");
        assert_eq!(e, "reasoning must be a string, got 42");
        let e = parse_reply(&GOOD.replace("0.8", "null")).expect_err("null");
        assert_eq!(e, "confidence must be a number, got null");
        let e = parse_reply(&GOOD.replace("55.5", r#""NaN""#)).expect_err("nan");
        assert!(e.starts_with("predicted_cpu_millicores must be a number"), "{e}");
    }

    #[test]
    fn ranges_are_validated() {
        for (from, to, want) in [
            (": 4,", ": 0,", "recommended_replicas must be >= 1, got 0"),
            (": 4,", ": -2,", "recommended_replicas must be >= 1, got -2"),
            (": 4,", ": 1e12,", "recommended_replicas is out of range: 1000000000000"),
            ("0.8", "1.5", "confidence must be between 0 and 1, got 1.5"),
            ("0.8", "-0.1", "confidence must be between 0 and 1, got -0.1"),
            ("55.5", "-3", "predicted_cpu_millicores must be >= 0, got -3"),
        ] {
            assert_eq!(parse_reply(&GOOD.replacen(from, to, 1)).expect_err(to), want);
        }
    }

    #[test]
    fn missing_keys_truncation_and_garbage() {
        let e = parse_reply(r#"{"recommended_replicas": 3, "confidence": 0.5}"#).expect_err("missing");
        assert_eq!(e, "the JSON object lacks predicted_cpu_millicores, predicted_memory_mebibytes, reasoning");
        let e = parse_reply(r#"{"action": "scale_up", "replicas": 2}"#).expect_err("other keys");
        assert!(e.starts_with("the JSON object has none of the required keys"), "{e}");
        let e = parse_reply(r#"{"recommended_replicas": 3, "predicted_cpu"#).expect_err("truncated");
        assert!(e.starts_with("invalid JSON: EOF while parsing"), "{e}");
        assert_eq!(parse_reply("I think 4 pods.").expect_err("prose"), "no JSON object found in the reply");
        assert_eq!(parse_reply("  ").expect_err("empty"), "the reply is empty");
        let e = parse_reply("{'recommended_replicas': 3}").expect_err("single quotes");
        assert!(e.starts_with("invalid JSON"), "{e}");
    }

    #[test]
    fn reasoning_is_cleaned_and_capped() {
        let a = ok(&GOOD.replace("load is rising", r"up\n\u001b[31mfast\u001b[0m\u0007 now"));
        assert_eq!(a.reasoning, "up fast now");
        let long = "word ".repeat(400);
        let a = ok(&GOOD.replace("load is rising", &long));
        assert_eq!(a.reasoning.chars().count(), REASONING_MAX_CHARS);
        assert!(a.reasoning.ends_with('…'));
    }

    #[test]
    fn stream_text_keeps_spaces_and_newlines_only() {
        assert_eq!(clean_stream_text(" \"rea"), " \"rea");
        assert_eq!(clean_stream_text("soning\": "), "soning\": ");
        assert_eq!(clean_stream_text("a\u{1b}[2Jb\n\tc\u{7}"), "ab\n c");
        assert_eq!(clean_stream_text("\r\n"), "\n");
    }

    #[test]
    fn many_braces_stay_cheap() {
        let text = "{".repeat(100_000);
        assert!(parse_reply(&text).is_err());
    }
}
