//! docs/http-behaviour.md and the tests that check it stay one story: the cases are
//! numbered 1–63 in order, every row of the conformance table names a case that
//! exists and expects a status that case allows, the static-file cases are each
//! tested in tests/static_files.rs, and the README links the document inside the
//! repository.

const DOC: &str = include_str!("../docs/http-behaviour.md");
const CONFORMANCE: &str = include_str!("conformance.rs");
const STATIC_FILES: &str = include_str!("static_files.rs");
const PROXY: &str = include_str!("proxy.rs");
const README: &str = include_str!("../README.md");

/// Case number → its text, from lines like `12. Obsolete line folding ...`.
fn cases() -> Vec<(u32, &'static str)> {
    DOC.lines()
        .filter_map(|l| {
            let (n, text) = l.split_once(". ")?;
            Some((n.parse().ok()?, text))
        })
        .collect()
}

/// (case, status) of every `row("N what", raw, STATUS, close)` in the table.
fn rows() -> Vec<(u32, u16, String)> {
    let mut out = Vec::new();
    let mut rest = CONFORMANCE;
    while let Some(at) = rest.find("row(\"") {
        rest = &rest[at + 5..];
        let name_end = rest.find('"').unwrap();
        let name = rest[..name_end].to_string();
        let Some(case) = name.split(' ').next().and_then(|n| n.parse().ok()) else {
            continue; // the helper's own definition, `row(case: ...`
        };
        let end = [", true)", ", false)"]
            .iter()
            .filter_map(|p| rest.find(p))
            .min()
            .expect("a row ends with its close flag");
        let status = rest[..end]
            .rsplit(", ")
            .next()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("row {name}: no status"));
        out.push((case, status, name));
    }
    out
}

#[test]
fn cases_are_numbered_from_one_in_order() {
    let numbers: Vec<u32> = cases().iter().map(|c| c.0).collect();
    assert!(numbers.len() >= 54, "cases went missing: {numbers:?}");
    assert_eq!(numbers, (1..=numbers.len() as u32).collect::<Vec<_>>());
}

/// Every `Case N` named in tests/static_files.rs.
fn static_file_cases() -> std::collections::BTreeSet<u32> {
    named_cases(STATIC_FILES)
}

/// Every `Case N` named in `text`.
fn named_cases(text: &str) -> std::collections::BTreeSet<u32> {
    text.split("Case ")
        .skip(1)
        .filter_map(|rest| {
            let end = rest.find(|c: char| !c.is_ascii_digit())?;
            rest[..end].parse().ok()
        })
        .collect()
}

#[test]
fn every_static_file_case_is_tested_and_every_tested_case_exists() {
    let section = &DOC[DOC.find("## Static files").expect("a Static files section")..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let documented: std::collections::BTreeSet<u32> = section
        .lines()
        .filter_map(|l| l.split_once(". ")?.0.parse().ok())
        .collect();
    assert_eq!(documented, (44..=54).collect());
    assert_eq!(static_file_cases(), documented);
}

/// The numbered cases of the section headed `heading`.
fn section_cases(heading: &str) -> std::collections::BTreeSet<u32> {
    let section = &DOC[DOC.find(heading).expect("the section")..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    section
        .lines()
        .filter_map(|l| l.split_once(". ")?.0.parse().ok())
        .collect()
}

#[test]
fn every_proxy_case_is_tested_and_every_tested_case_exists() {
    let documented = section_cases("## Reverse proxy");
    assert_eq!(documented, (55..=63).collect());
    assert_eq!(named_cases(PROXY), documented);
}

#[test]
fn every_conformance_row_matches_its_case() {
    let cases = cases();
    let rows = rows();
    assert!(rows.len() >= 60, "the table parsed to {} rows", rows.len());
    for (case, status, name) in rows {
        let text = cases
            .iter()
            .find(|c| c.0 == case)
            .unwrap_or_else(|| panic!("row '{name}' names case {case}, which the document lacks"))
            .1;
        if status != 200 {
            assert!(
                text.contains(&status.to_string()),
                "row '{name}' expects {status}, case {case} says: {text}"
            );
        }
    }
}

#[test]
fn choices_made_agree_with_the_tests() {
    let choices = &DOC[DOC.find("## Choices made").expect("a Choices made section")..];
    // tests/connections.rs max_conns_is_enforced expects the 503.
    assert!(choices.contains("Case 42") && choices.contains("503"));
    // tests/conformance.rs row "16 bare LF" expects 400.
    assert!(choices.contains("Case 16") && choices.contains("bare LF"));
    assert!(CONFORMANCE.contains(r#"row("16 bare LF", "GET / HTTP/1.1\nHost: t\n\n", 400"#));
    // tests/static_files.rs byte_ranges expects 200 for several ranges.
    assert!(choices.contains("Case 49") && choices.contains("several ranges"));
    assert!(STATIC_FILES.contains(r#""bytes=0-1,3-4","#));
}

#[test]
fn the_readme_links_the_document_inside_the_repository() {
    assert!(README.contains("(docs/http-behaviour.md)"));
    assert!(
        !README.contains("../shared"),
        "links must stay inside the repository"
    );
}

/// (name, text) of README.md and every `docs/*.md`.
fn documents() -> Vec<(String, String)> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut out = vec![("README.md".to_string(), README.to_string())];
    let mut docs: Vec<_> = std::fs::read_dir(format!("{root}/docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    for p in docs {
        let name = format!("docs/{}", p.file_name().unwrap().to_string_lossy());
        out.push((name, std::fs::read_to_string(&p).unwrap()));
    }
    out
}

/// Every `](target)` of `text`.
fn links(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            out.push(&rest[..end]);
        }
    }
    out
}

#[test]
fn every_link_inside_the_repository_exists() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for (name, text) in documents() {
        let dir = root.join(&name).parent().unwrap().to_path_buf();
        for link in links(&text) {
            let path = link.split('#').next().unwrap();
            if path.is_empty() || link.starts_with("http") {
                continue;
            }
            assert!(
                dir.join(path).exists(),
                "{name} links {link}, which is not there"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} links found");
}

#[test]
fn the_docs_say_what_a_thing_is_not_where_it_came_from() {
    for (name, text) in documents() {
        let lower = text.to_lowercase();
        for word in ["the seed", "tier 2", "issue 1", "issue 2", "issue 9"] {
            assert!(!lower.contains(word), "{name} says {word:?}");
        }
    }
}

#[test]
fn the_readme_names_one_newest_run() {
    // Every "newest" or "latest" run the README points at is the same folder.
    let folders: std::collections::BTreeSet<&str> = README
        .split("\n\n")
        .filter(|para| {
            let p = para.to_lowercase();
            p.contains("newest") || p.contains("latest")
        })
        .flat_map(links)
        .filter(|l| l.starts_with("results/"))
        .map(|l| l.rsplit_once('/').map_or(l, |(dir, _)| dir))
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
}
