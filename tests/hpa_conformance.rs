//! Runs every HPA conformance case (Kubernetes' own unit tests as data) against `engine::hpa`.
//! `SCALETUI_HPA_CASES=/path/file.json` runs another file of the same schema instead.

use scaletui::engine::hpa::conformance;

#[test]
fn hpa_conformance() {
    let path = std::env::var("SCALETUI_HPA_CASES")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/hpa_cases.json").to_string());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let cases: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"));
    let results = conformance::run_all(&cases).unwrap_or_else(|e| panic!("{path}: {e}"));
    let failed: Vec<_> = results.iter().filter(|r| !r.passed).collect();
    for f in &failed {
        eprintln!("FAIL {} ({}): {}", f.id, f.kind, f.detail);
    }
    println!("hpa conformance: {} passed, {} failed ({path})", results.len() - failed.len(), failed.len());
    assert!(!results.is_empty(), "{path} holds no cases");
    assert!(failed.is_empty(), "{} of {} conformance cases failed", failed.len(), results.len());
}
