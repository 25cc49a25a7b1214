//! Histograms merge exactly, also after a trip through the JSON encoding.

use loadgen::hist::{self, LatencySummary};

#[test]
fn merging_per_thread_histograms_is_exact() {
    let mut a = hist::new_hist();
    let mut b = hist::new_hist();
    let mut all = hist::new_hist();
    for v in 1..=10_000u64 {
        let (h, us) = if v % 3 == 0 {
            (&mut a, v * 7)
        } else {
            (&mut b, v)
        };
        hist::record(h, us);
        hist::record(&mut all, us);
    }
    let mut merged = hist::new_hist();
    hist::merge(&mut merged, &a);
    hist::merge(&mut merged, &b);
    assert_eq!(merged.len(), 10_000);
    assert_eq!(LatencySummary::of(&merged), LatencySummary::of(&all));
    // Through base64 V2 and back: the same counts at every value.
    let decoded_a = hist::decode(&hist::encode(&a)).unwrap();
    let decoded_b = hist::decode(&hist::encode(&b)).unwrap();
    let mut from_json = hist::new_hist();
    hist::merge(&mut from_json, &decoded_a);
    hist::merge(&mut from_json, &decoded_b);
    assert_eq!(from_json, all);
}

#[test]
fn out_of_range_values_are_clamped_not_lost() {
    let mut h = hist::new_hist();
    hist::record(&mut h, 0);
    hist::record(&mut h, 3_600_000_000);
    assert_eq!(h.len(), 2);
    assert_eq!(h.min(), hist::LOWEST_US);
    assert!(h.max() >= hist::HIGHEST_US);
}

#[test]
fn decode_rejects_garbage_with_a_message() {
    assert!(hist::decode("not base64!").unwrap_err().contains("base64"));
    assert!(hist::decode("aGVsbG8=").unwrap_err().contains("decode"));
}

#[test]
fn hgrm_lists_the_spectrum_up_to_the_max() {
    let mut h = hist::new_hist();
    for v in [100u64, 200, 300, 5_000] {
        hist::record(&mut h, v);
    }
    let text = hist::hgrm(&h);
    assert!(text.lines().next().unwrap().contains("Percentile"));
    let last_row = text
        .lines()
        .rfind(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap();
    assert!(last_row.trim_start().starts_with("5.0"), "{last_row}");
    assert!(text.contains("Total count    =            4"), "{text}");
}

#[test]
fn merging_a_wider_foreign_histogram_clamps_instead_of_failing() {
    let mut wide = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    wide.record(10).unwrap();
    wide.record(3_000_000_000).unwrap();
    let decoded = hist::decode(&hist::encode(&wide)).unwrap();
    let mut h = hist::new_hist();
    hist::merge(&mut h, &decoded);
    assert_eq!(h.len(), 2);
    assert!(h.max() >= hist::HIGHEST_US && h.max() < 2 * hist::HIGHEST_US);
}
