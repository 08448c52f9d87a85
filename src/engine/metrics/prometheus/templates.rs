//! PromQL templates: `{name}` placeholders replaced in one pass (inserted text is never scanned
//! again), string values quoted for PromQL double-quoted strings.

/// Every placeholder a query template may use.
pub const PLACEHOLDERS: [&str; 6] =
    ["namespace", "deployment", "container", "pod_regex", "container_filter", "rate_window"];

/// What the placeholders stand for (raw, unescaped).
#[derive(Debug, Clone, PartialEq)]
pub struct Vars {
    pub namespace: String,
    pub deployment: String,
    pub container: String,
    /// May use `{namespace}` and `{deployment}`.
    pub pod_regex: String,
    /// Raw PromQL label matchers; may use `{container}`, `{namespace}`, `{deployment}`.
    pub container_filter: String,
    pub rate_window: String,
}

/// Escape a value for the inside of a PromQL double-quoted string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out
}

/// The `{word}` placeholders of a template with their byte ranges. A placeholder is an
/// identifier alone in braces; PromQL label matchers (`{a="b"}`) and regex counts (`{5}`) are not.
fn scan(t: &str) -> Vec<(usize, usize, &str)> {
    let bytes = t.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' {
            let start = i + 1;
            let mut j = start;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
            let first_ok = bytes.get(start).is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_');
            if first_ok && j < bytes.len() && bytes[j] == b'}' {
                found.push((i, j + 1, &t[start..j]));
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    found
}

/// Check that a template uses only `allowed` placeholders.
pub fn check(t: &str, allowed: &[&str]) -> Result<(), String> {
    for (_, _, name) in scan(t) {
        if !allowed.contains(&name) {
            return Err(format!("unknown placeholder {{{name}}} (known: {})", allowed.join(", ")));
        }
    }
    Ok(())
}

/// Replace the placeholders `lookup` knows; leave the rest as written.
fn substitute(t: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(t.len() + 64);
    let mut last = 0;
    for (s, e, name) in scan(t) {
        if let Some(v) = lookup(name) {
            out.push_str(&t[last..s]);
            out.push_str(&v);
            last = e;
        }
    }
    out.push_str(&t[last..]);
    out
}

impl Vars {
    /// The template with every placeholder replaced.
    pub fn render(&self, template: &str) -> String {
        let ns = quote(&self.namespace);
        let dep = quote(&self.deployment);
        let container = quote(&self.container);
        let regex = substitute(&self.pod_regex, |n| match n {
            "namespace" => Some(self.namespace.clone()),
            "deployment" => Some(self.deployment.clone()),
            _ => None,
        });
        let pod_regex = quote(&regex);
        let container_filter = substitute(&self.container_filter, |n| match n {
            "container" => Some(container.clone()),
            "namespace" => Some(ns.clone()),
            "deployment" => Some(dep.clone()),
            _ => None,
        });
        substitute(template, |n| match n {
            "namespace" => Some(ns.clone()),
            "deployment" => Some(dep.clone()),
            "container" => Some(container.clone()),
            "pod_regex" => Some(pod_regex.clone()),
            "container_filter" => Some(container_filter.clone()),
            "rate_window" => Some(self.rate_window.clone()),
            _ => None,
        })
    }
}

/// A Prometheus duration (`30s`, `1m`, `1m30s`, `500ms`, …) in seconds.
pub fn parse_duration(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        const UNITS: [(&str, f64); 7] = [
            ("ms", 0.001),
            ("s", 1.0),
            ("m", 60.0),
            ("h", 3600.0),
            ("d", 86_400.0),
            ("w", 604_800.0),
            ("y", 31_536_000.0),
        ];
        let (unit, len) = UNITS.iter().find(|(u, _)| rest.starts_with(u)).map(|(u, f)| (*f, u.len()))?;
        total += n * unit;
        rest = &rest[len..];
    }
    (total > 0.0).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            namespace: "shop".into(),
            deployment: "web".into(),
            container: "nginx".into(),
            pod_regex: "{deployment}-[a-z0-9]+-[a-z0-9]{5}".into(),
            container_filter: r#"container="{container}""#.into(),
            rate_window: "2m".into(),
        }
    }

    #[test]
    fn placeholders_are_replaced_once_and_matchers_kept() {
        let t =
            r#"sum by (pod) (rate(x{namespace="{namespace}", pod=~"{pod_regex}", {container_filter}}[{rate_window}]))"#;
        assert_eq!(
            vars().render(t),
            r#"sum by (pod) (rate(x{namespace="shop", pod=~"web-[a-z0-9]+-[a-z0-9]{5}", container="nginx"}[2m]))"#
        );
        // A value that looks like a placeholder is not expanded again.
        let v = Vars { namespace: "{deployment}".into(), ..vars() };
        assert_eq!(v.render(r#"x{namespace="{namespace}"}"#), r#"x{namespace="{deployment}"}"#);
    }

    #[test]
    fn string_values_are_quoted_for_promql() {
        let v = Vars { pod_regex: r#"web-\d+"x"#.into(), ..vars() };
        assert_eq!(v.render(r#"pod=~"{pod_regex}""#), r#"pod=~"web-\\d+\"x""#);
    }

    #[test]
    fn unknown_placeholders_are_errors_but_promql_braces_are_not() {
        assert!(check(r#"x{a="b"} + y{5} + z{}"#, &PLACEHOLDERS).is_ok());
        let e = check("sum(x{namespce})", &PLACEHOLDERS).expect_err("typo");
        assert!(e.contains("{namespce}") && e.contains("namespace"), "{e}");
        assert!(check("{namespace}", &["deployment"]).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m"), Some(60.0));
        assert_eq!(parse_duration("1m30s"), Some(90.0));
        assert_eq!(parse_duration("500ms"), Some(0.5));
        assert_eq!(parse_duration("2h"), Some(7200.0));
        for bad in ["", "1", "m", "1 m", "-1m", "0s", "1x"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
