//! Runs every HPA conformance case (Kubernetes' own unit tests as data) against `engine::hpa`.
//! The 140 cases of the specification (`hpa_cases.json`) and more ported from Kubernetes'
//! `replica_calculator_test.go` and `horizontal_test.go` (`hpa_upstream_cases.json`).
//! `SCALETUI_HPA_CASES=/path/file.json` runs another file of the same schema instead.

use scaletui::engine::hpa::conformance;

#[test]
fn hpa_conformance() {
    let paths: Vec<String> = match std::env::var("SCALETUI_HPA_CASES") {
        Ok(p) => vec![p],
        Err(_) => ["hpa_cases.json", "hpa_upstream_cases.json"]
            .iter()
            .map(|f| format!("{}/tests/data/{f}", env!("CARGO_MANIFEST_DIR")))
            .collect(),
    };
    let mut results = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
        let cases: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"));
        results.extend(conformance::run_all(&cases).unwrap_or_else(|e| panic!("{path}: {e}")));
    }
    let path = paths.join(" + ");
    let failed: Vec<_> = results.iter().filter(|r| !r.passed).collect();
    for f in &failed {
        eprintln!("FAIL {} ({}): {}", f.id, f.kind, f.detail);
    }
    println!("hpa conformance: {} passed, {} failed ({path})", results.len() - failed.len(), failed.len());
    assert!(!results.is_empty(), "{path} holds no cases");
    assert!(failed.is_empty(), "{} of {} conformance cases failed", failed.len(), results.len());
}
