//! Calibration and measurement of the citation support check on the labelled pairs in
//! `corpus/eval/support_pairs.jsonl` and `support_pairs_ko.jsonl` (591 pairs, 211 Korean,
//! every kind of alteration), with the real embedding model: thresholds fitted on the
//! `calibration` half, measured on the `test` half.

use doctrina_draft::support::{
    Evaluation, Features, Support, SupportChecker, Thresholds, calibrate, evaluate,
};
use doctrina_tests::{embedder, workspace};

fn samples() -> Vec<(Features, Support, String)> {
    let pairs = doctrina_eval::support::load_pairs(&[
        workspace()
            .join("corpus/eval/support_pairs.jsonl")
            .as_path(),
        workspace()
            .join("corpus/eval/support_pairs_ko.jsonl")
            .as_path(),
    ])
    .expect("the labelled pairs");
    let checker = SupportChecker::new(embedder(), Thresholds::default());
    pairs
        .iter()
        .map(|pair| {
            let label = Support::parse(&pair.label).expect("checked by load_pairs");
            let (features, evidence) = checker
                .features(&pair.sentence, &[pair.passage.as_str()])
                .expect("features");
            let evidence = evidence.expect("a passage always yields evidence");
            assert!(
                pair.passage.contains(&evidence.text),
                "{}: evidence is a span",
                pair.id
            );
            (features, label, pair.split.clone().unwrap_or_default())
        })
        .collect()
}

fn print(name: &str, e: &Evaluation) {
    eprintln!(
        "{name}: {:?} accuracy {:.3} | supported P {:.3} R {:.3} | weak P {:.3} R {:.3} | unsupported P {:.3} R {:.3} | confusion {:?}",
        e.thresholds,
        e.accuracy,
        e.supported.precision,
        e.supported.recall,
        e.weak.precision,
        e.weak.recall,
        e.unsupported.precision,
        e.unsupported.recall,
        e.confusion
    );
}

#[test]
fn support_check_precision_and_recall_on_the_labelled_set() {
    let all = samples();
    assert!(all.len() >= 300, "{}", all.len());
    let part = |split: &str| -> Vec<(Features, Support)> {
        all.iter()
            .filter(|(_, _, s)| s == split)
            .map(|(f, l, _)| (*f, *l))
            .collect()
    };
    let (calibration, test) = (part("calibration"), part("test"));
    assert!(calibration.len() >= 150 && test.len() >= 150);
    let fitted = calibrate(&calibration);
    print("fitted on the calibration half", &fitted);
    let held_out = evaluate(&test, Thresholds::default());
    print("test half, held out", &held_out);
    // The shipped thresholds are the calibrated ones (re-run this test to recalibrate).
    assert_eq!(
        fitted.thresholds,
        Thresholds::default(),
        "defaults drifted from calibration"
    );
    // Floors from the held-out measurement (README, "Citation support"): what is shown as
    // supported must usually be supported, and false claims shown as supported stay rare.
    assert!(
        held_out.supported.precision >= SUPPORTED_PRECISION_FLOOR,
        "{held_out:?}"
    );
    let false_supported = held_out.confusion[2][0] as f64 / test.len() as f64;
    assert!(false_supported <= FALSE_SUPPORTED_CEILING, "{held_out:?}");
    // A claim with a number its source does not state is never shown as supported.
    for (f, _, _) in &all {
        if f.novel_number {
            assert_eq!(Thresholds::default().label(*f), Support::Unsupported);
        }
    }
}

/// Held out: measured 0.81 (see the README).
const SUPPORTED_PRECISION_FLOOR: f64 = 0.75;
/// Share of test pairs labelled unsupported but shown as supported: measured 0.027.
const FALSE_SUPPORTED_CEILING: f64 = 0.05;

/// One recorded judgement of the inference server (`corpus/eval/support_judge.jsonl`,
/// written from `doctrina eval support --judge check+llm --json` with the default model).
#[derive(serde::Deserialize)]
struct Recorded {
    id: String,
    model: String,
    answer: String,
    probabilities: [f32; 3],
}

/// The check combined with the inference server as judge, as drafts label sentences: the
/// combination's thresholds fitted on the calibration half with the judge's recorded
/// answers, measured on the test half. The judge's answers are recorded because the test
/// machine serves a smaller model; `doctrina eval support --judge check+llm` re-measures
/// live against any server (README, "Citation support").
#[test]
fn check_and_judge_combined_on_the_labelled_set() {
    use doctrina_draft::judge::{Combination, Judgement, Sample, calibrate, evaluate};
    let recorded: std::collections::HashMap<String, Recorded> =
        std::fs::read_to_string(workspace().join("corpus/eval/support_judge.jsonl"))
            .expect("the recorded judgements")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let r: Recorded = serde_json::from_str(l).expect("a recorded judgement");
                (r.id.clone(), r)
            })
            .collect();
    let pairs = doctrina_eval::support::load_pairs(&[
        workspace()
            .join("corpus/eval/support_pairs.jsonl")
            .as_path(),
        workspace()
            .join("corpus/eval/support_pairs_ko.jsonl")
            .as_path(),
    ])
    .expect("the labelled pairs");
    let checker = SupportChecker::new(embedder(), Thresholds::default());
    let mut calibration = Vec::new();
    let mut test = Vec::new();
    for pair in &pairs {
        let r = recorded
            .get(&pair.id)
            .unwrap_or_else(|| panic!("{}: no recorded judgement", pair.id));
        assert!(r.model.contains("qwen"), "{}: {}", pair.id, r.model);
        let verdict = checker
            .check(&pair.sentence, &[pair.passage.as_str()])
            .expect("check");
        let sample = Sample {
            features: verdict.features,
            score: verdict.score,
            check: verdict.support,
            judgement: Judgement {
                label: doctrina_draft::inference::choice_of(
                    &r.answer,
                    &doctrina_draft::judge::CHOICES,
                )
                .map(|i| [Support::Supported, Support::Weak, Support::Unsupported][i]),
                probabilities: r.probabilities,
                calibrated: true,
                answer: r.answer.clone(),
            },
            gold: Support::parse(&pair.label).expect("checked by load_pairs"),
        };
        match pair.split.as_deref() {
            Some("calibration") => calibration.push(sample),
            _ => test.push(sample),
        }
    }
    let fitted = calibrate(&calibration);
    let held_out = evaluate(&test, Combination::default());
    eprintln!("check+judge fitted on the calibration half: {fitted:?}");
    eprintln!("check+judge on the test half, held out: {held_out:?}");
    assert_eq!(
        fitted.combination,
        Combination::default(),
        "defaults drifted from calibration"
    );
    assert!(
        held_out.supported_precision >= COMBINED_PRECISION_FLOOR
            && held_out.supported_recall >= COMBINED_RECALL_FLOOR,
        "{held_out:?}"
    );
    assert!(
        held_out.unsupported_recall >= COMBINED_UNSUPPORTED_RECALL_FLOOR,
        "{held_out:?}"
    );
    // The combination never shows as supported what the check's rules flag.
    for s in calibration.iter().chain(&test) {
        let f = s.features;
        if f.novel_number || f.negation_mismatch || f.modality_mismatch {
            let label = Combination::default().label(&f, s.score, s.check, &s.judgement);
            assert_eq!(label, Support::Unsupported);
        }
    }
}

/// Held out, check and judge combined: measured 0.913 at recall 0.624 (README, "Citation
/// support"), against the check's 0.81 alone. The floors are the issue's target: precision
/// 0.90 at recall 0.60 on pairs not calibrated on.
const COMBINED_PRECISION_FLOOR: f64 = 0.90;
const COMBINED_RECALL_FLOOR: f64 = 0.60;
/// Held out: measured 0.90; the target is 0.80.
const COMBINED_UNSUPPORTED_RECALL_FLOOR: f64 = 0.80;

/// The evidence of a claim is the passage sentence it matches best, whichever sentence
/// that is: the first sentence of a passage starts where the passage does and was once
/// taken for the whole passage and never shown (the claim was then read against the
/// last sentence, and its "not" made a faithful claim `unsupported`).
#[test]
fn the_evidence_can_be_a_passages_first_sentence() {
    let checker = SupportChecker::new(embedder(), Thresholds::default());
    let passage = "Routine resupply is conducted by logistics package (LOGPAC) once every 24 \
                   hours. The forward support company builds each LOGPAC from the LOGSTAT \
                   submitted at 1400. The same LRP location is not used on two consecutive \
                   nights.";
    let verdict = checker
        .check(
            "Routine resupply is conducted by LOGPAC once every 24 hours.",
            &[passage],
        )
        .expect("checked");
    let evidence = verdict.evidence.clone().expect("evidence");
    assert_eq!(evidence.char_start, 0);
    assert!(
        evidence.text.starts_with("Routine resupply") && evidence.text.ends_with("hours."),
        "{evidence:?}"
    );
    assert!(!verdict.features.negation_mismatch);
    assert_eq!(verdict.support, Support::Supported, "{verdict:?}");
    // A passage of one sentence: that sentence is the evidence.
    let one = "The BSB commander is responsible for BSA security.";
    let verdict = checker
        .check("The BSB commander is responsible for BSA security.", &[one])
        .expect("checked");
    assert_eq!(verdict.evidence.expect("evidence").text, one);
}
