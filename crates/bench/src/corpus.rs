//! A deterministic generated corpus that reads like doctrine: Markdown publications with
//! chapters, sections and numbered paragraphs (`3-14.`) of mixed lengths, so chunks range
//! from one-line paragraphs to full 300-token passages, as real manuals do.

/// xorshift64*: small, fast and the same on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

const SUBJECTS: &[&str] = &[
    "The brigade support battalion",
    "The forward support company",
    "Each convoy commander",
    "The distribution company",
    "The S-4",
    "The support operations officer",
    "The logistics release point",
    "The maintenance control section",
    "Each march unit",
    "The combat trains command post",
    "The field trains",
    "The fuel section",
    "The ammunition transfer holding point",
    "Recovery teams",
    "The medical company",
    "The movement control team",
    "The brigade engineer battalion",
    "Route clearance patrols",
    "The quartering party",
    "The signal company",
];
const VERBS: &[&str] = &[
    "coordinates",
    "plans",
    "synchronizes",
    "tracks",
    "reports",
    "establishes",
    "secures",
    "pushes",
    "pulls",
    "requests",
    "rehearses",
    "inspects",
    "allocates",
    "reconciles",
    "prioritizes",
    "forecasts",
    "distributes",
    "maintains",
    "recovers",
    "escorts",
];
const OBJECTS: &[&str] = &[
    "bulk fuel",
    "class V ammunition",
    "water",
    "repair parts",
    "rations",
    "the logistics package",
    "the route status",
    "the resupply window",
    "casualty evacuation",
    "the convoy manifest",
    "the march table",
    "the load plan",
    "night movement",
    "the supply point",
    "the consumption report",
    "emergency resupply",
    "the recovery plan",
    "the communications plan",
    "the rally point",
    "the task organization",
];
const TAILS: &[&str] = &[
    "before the attack begins",
    "during limited visibility",
    "at the release point",
    "within the planning horizon",
    "under the brigade's control measures",
    "when consumption stabilizes",
    "on the main supply route",
    "in the support area",
    "for the supported battalion",
    "after each engagement",
    "as the situation requires",
    "no later than the time in the order",
    "along the alternate supply route",
    "through the support operations channel",
    "with the forward logistics element",
];
const CHAPTERS: &[&str] = &[
    "Planning",
    "Execution",
    "Sustainment",
    "Movement",
    "Protection",
    "Command and Control",
    "Maintenance",
    "Recovery",
    "Distribution",
    "Reporting",
];
const MARKINGS: &[&str] = &["UNCLASSIFIED", "UNCLASSIFIED", "CUI", "CONFIDENTIAL"];

fn sentence(rng: &mut Rng) -> String {
    format!(
        "{} {} {} {}.",
        rng.pick(SUBJECTS),
        rng.pick(VERBS),
        rng.pick(OBJECTS),
        rng.pick(TAILS)
    )
}

/// A paragraph of 1 to ~22 sentences: short, medium and long paragraphs in proportion.
fn paragraph(rng: &mut Rng) -> String {
    let sentences = match rng.below(10) {
        0..=3 => 1 + rng.below(2),
        4..=7 => 3 + rng.below(5),
        _ => 12 + rng.below(11),
    };
    (0..sentences)
        .map(|_| sentence(rng))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One publication as Markdown with YAML front matter.
pub fn document(n: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed ^ (n as u64).wrapping_mul(0x1000_0000_01B3));
    let mut out = format!(
        "---\ntitle: \"Bench Manual {n}: {} Operations\"\npublication: \"BTP {}-{}\"\nmarking: {}\n---\n\n",
        rng.pick(CHAPTERS),
        1 + n / 100,
        n % 100,
        rng.pick(MARKINGS)
    );
    for chapter in 1..=3 {
        out.push_str(&format!("# Chapter {chapter} {}\n\n", rng.pick(CHAPTERS)));
        for section in 1..=2 {
            out.push_str(&format!("## Section {section} {}\n\n", rng.pick(CHAPTERS)));
            for p in 1..=4 {
                let number = (section - 1) * 4 + p;
                out.push_str(&format!("{chapter}-{number}. {}\n\n", paragraph(&mut rng)));
            }
        }
    }
    out
}

/// A short query in the corpus's vocabulary.
pub fn query(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!("{} {}", rng.pick(VERBS), rng.pick(OBJECTS)),
        1 => format!(
            "how does {} handle {}",
            rng.pick(SUBJECTS).to_lowercase(),
            rng.pick(OBJECTS)
        ),
        2 => format!("{} {}", rng.pick(OBJECTS), rng.pick(TAILS)),
        _ => format!(
            "paragraph {}-{} {}",
            1 + rng.below(3),
            1 + rng.below(8),
            rng.pick(OBJECTS)
        ),
    }
}

/// A generated paragraph (for synthetic passages at scale).
pub fn passage_text(rng: &mut Rng) -> String {
    paragraph(rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_varied() {
        assert_eq!(document(3, 7), document(3, 7));
        assert_ne!(document(3, 7), document(4, 7));
        let doc = document(0, 1);
        assert!(doc.contains("1-1. ") && doc.contains("3-8. "));
        let mut rng = Rng::new(1);
        let lengths: Vec<usize> = (0..200).map(|_| paragraph(&mut rng).len()).collect();
        let (min, max) = (lengths.iter().min().unwrap(), lengths.iter().max().unwrap());
        assert!(*max > 8 * *min, "mixed lengths: {min}..{max}");
    }
}
