//! docs/api.md lists every event exactly as the event tables define them: the generated
//! list between the event-list markers must equal `event_list::render()`.

use lms_realtime::event_list::{BEGIN, END, render};
use std::path::Path;

#[test]
fn the_event_list_in_docs_api_md_is_the_event_tables() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/api.md");
    let doc = std::fs::read_to_string(&path).expect("docs/api.md");
    let expected = render();
    let actual = doc
        .find(BEGIN)
        .and_then(|a| doc[a..].find(END).map(|b| &doc[a..a + b + END.len()]))
        .map(|s| format!("{s}\n"));
    assert_eq!(
        actual.as_deref(),
        Some(expected.as_str()),
        "docs/api.md's event list differs from the event tables; replace the part between the markers with:\n\n{expected}"
    );
}

#[test]
fn every_event_row_of_docs_api_md_names_a_listed_event() {
    // The hand-written tables describe each event; none may name an event the tables lack.
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/api.md"))
        .expect("docs/api.md");
    let generated = render();
    for line in doc.lines() {
        let Some(rest) = line.strip_prefix("| `") else {
            continue;
        };
        let Some(name) = rest.split('`').next() else {
            continue;
        };
        let is_event_name = name.split(':').count() == 2
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c == ':');
        if is_event_name {
            assert!(
                generated.contains(&format!("| `{name}` |")),
                "docs/api.md describes `{name}`, which no event table lists"
            );
        }
    }
}
