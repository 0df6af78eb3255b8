//! Marking-based access control through the real pipeline: a corpus mixing all five levels
//! and the caveats NOFORN, ORCON and two release markings, indexed with the real embedder,
//! probed under several clearances with generated queries (exact titles, publication
//! identifiers, paragraph numbers, codewords only restricted documents contain, paraphrases,
//! `*`, single letters, near-empty queries) in every mode, through `Retriever::search`, both
//! indexes directly (so the filter is proven inside each query, not only by the retriever's
//! final check) and drafting. Not one hit may be above the clearance.

use std::collections::HashMap;

use doctrina_draft::{DraftError, DraftMode, DraftRequest};
use doctrina_retrieve::RetrieveError;
use doctrina_tests::{TestIndex, drafter_over, embedder};
use doctrina_types::{Clearance, Marking, MarkingScheme, PassageFilter, SearchMode};

struct Doc {
    id: &'static str,
    level: &'static str,
    caveats: &'static [&'static str],
    title: &'static str,
    publication: &'static str,
    /// Words found in this document only.
    codeword: &'static str,
    /// A question about the document in other words than its own.
    paraphrase: &'static str,
    /// (paragraph number, text) per chapter.
    paragraphs: &'static [(&'static str, &'static str)],
}

const SHARED: &str = "Convoy fuel planning: each serial carries bulk fuel for the movement \
    and reports its fuel status at every checkpoint to the movement control team.";

const DOCS: &[Doc] = &[
    Doc {
        id: "u-convoy",
        level: "UNCLASSIFIED",
        caveats: &[],
        title: "Convoy Operations Handbook",
        publication: "ATP 4-01.45",
        codeword: "march unit intervals",
        paraphrase: "how far apart should vehicles drive on a road march",
        paragraphs: &[
            (
                "1-1",
                "March unit intervals are 100 metres by day and 50 metres by night.",
            ),
            (
                "1-2",
                "Halts are taken every two hours for maintenance checks.",
            ),
            (
                "1-3",
                "The convoy commander briefs the route, rally points and recovery.",
            ),
            (
                "1-4",
                "Refuelling on the move uses a fuel point set up beside the route.",
            ),
        ],
    },
    Doc {
        id: "u-feeding",
        level: "UNCLASSIFIED",
        caveats: &[],
        title: "Field Feeding Procedures",
        publication: "ATP 4-41",
        codeword: "containerized kitchen",
        paraphrase: "how troops get hot meals in the field",
        paragraphs: &[
            (
                "2-1",
                "The containerized kitchen serves two hot meals a day.",
            ),
            (
                "2-2",
                "Water for cooking is drawn from approved sources only.",
            ),
            (
                "2-3",
                "Rations are issued by the supply sergeant each evening.",
            ),
            ("2-4", "Sanitation of the kitchen site is inspected daily."),
        ],
    },
    Doc {
        id: "cui-access",
        level: "CUI",
        caveats: &[],
        title: "Installation Access Roster Procedures",
        publication: "SOP 5-220",
        codeword: "PALISADE badge roster",
        paraphrase: "who is allowed through the base gate",
        paragraphs: &[
            (
                "5-21",
                "The PALISADE badge roster lists every person cleared for the gate.",
            ),
            (
                "5-22",
                "Visitors are escorted and signed in at the visitor centre.",
            ),
        ],
    },
    Doc {
        id: "c-bridges",
        level: "CONFIDENTIAL",
        caveats: &[],
        title: "Bridge Classification Survey Results",
        publication: "RPT 31-9",
        codeword: "KINGFISHER crossing",
        paraphrase: "which river crossings can carry heavy tanks",
        paragraphs: &[
            (
                "6-31",
                "The KINGFISHER crossing is classified MLC 70 for tracked vehicles.",
            ),
            ("6-32", "Two other bridges are limited to wheeled traffic."),
        ],
    },
    Doc {
        id: "c-french",
        level: "CONFIDENTIAL",
        caveats: &["REL TO USA, FRA"],
        title: "Combined Liaison Arrangements with the Allied Mountain Brigade",
        publication: "MOA 12-3",
        codeword: "CHAMOIS liaison cell",
        paraphrase: "how we coordinate with our partner mountain troops",
        paragraphs: &[
            (
                "8-12",
                "The CHAMOIS liaison cell sits with the allied brigade headquarters.",
            ),
            (
                "8-13",
                "Liaison officers exchange situation reports every six hours.",
            ),
        ],
    },
    Doc {
        id: "s-fires",
        level: "SECRET",
        caveats: &["REL TO USA, GBR"],
        title: "Coalition Fires Coordination Annex",
        publication: "ANNEX D 24-09",
        codeword: "THUNDERWELL fire support line",
        paraphrase: "where artillery may shoot without asking the coalition partner",
        paragraphs: &[
            (
                "9-41",
                "The THUNDERWELL fire support line runs along the canal.",
            ),
            (
                "9-42",
                "Fires short of it are cleared by the coalition fires cell.",
            ),
        ],
    },
    Doc {
        id: "s-recon",
        level: "SECRET",
        caveats: &["NOFORN"],
        title: "Special Reconnaissance Insertion Plan",
        publication: "OPLAN 7-31",
        codeword: "BASALT KESTREL landing zone WREN",
        paraphrase: "where the scouts will be dropped off by helicopter",
        paragraphs: &[
            (
                "7-31",
                "Team BASALT KESTREL inserts at landing zone WREN at 0200.",
            ),
            ("7-32", "Extraction is by boat from the southern beach."),
        ],
    },
    Doc {
        id: "s-air",
        level: "SECRET",
        caveats: &[],
        title: "Brigade Air Defense Priorities",
        publication: "OPORD 25-03",
        codeword: "SENTINEL HALO",
        paraphrase: "what gets protected from enemy aircraft first",
        paragraphs: &[
            ("3-51", "SENTINEL HALO covers the main command post first."),
            ("3-52", "The fuel farm is the second air defense priority."),
        ],
    },
    Doc {
        id: "ts-source",
        level: "TOP SECRET",
        caveats: &["ORCON"],
        title: "Source Reporting on the Northern Logistics Hub",
        publication: "HUMINT 88-2",
        codeword: "source NIGHTJAR",
        paraphrase: "what our informant said about the enemy supply depot",
        paragraphs: &[
            (
                "4-88",
                "Source NIGHTJAR reports forty fuel trucks at the northern hub.",
            ),
            ("4-89", "The hub is guarded by a motorised rifle company."),
        ],
    },
    Doc {
        id: "ts-deception",
        level: "TOP SECRET",
        caveats: &["NOFORN", "ORCON"],
        title: "Strategic Deception Concept",
        publication: "CONPLAN 9-1",
        codeword: "Operation MIRAGE LANTERN",
        paraphrase: "how we will trick the enemy about where the main attack comes",
        paragraphs: &[
            (
                "1-91",
                "Operation MIRAGE LANTERN feints toward the western pass.",
            ),
            (
                "1-92",
                "Dummy radio traffic simulates a division headquarters.",
            ),
        ],
    },
];

impl Doc {
    fn marking(&self) -> Marking {
        Marking {
            level: self.level.to_string(),
            caveats: self.caveats.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn markdown(&self) -> String {
        let caveats: Vec<String> = self.caveats.iter().map(|c| format!("{c:?}")).collect();
        let mut out = format!(
            "---\nid: {}\ntitle: {}\npublication: {}\nedition: 2024-03-01\nmarking: {}\n\
             caveats: [{}]\n---\n\n# {}\n\n",
            self.id,
            self.title,
            self.publication,
            self.level,
            caveats.join(", "),
            self.title
        );
        for (i, (number, text)) in self.paragraphs.iter().enumerate() {
            out.push_str(&format!(
                "## Chapter {} {}\n\n{number}. {text} {SHARED}\n\n",
                i + 1,
                self.codeword
            ));
        }
        out
    }
}

fn clearance(level: &str, caveats: &[&str]) -> Clearance {
    Clearance {
        level: level.to_string(),
        caveats: caveats.iter().map(|c| c.to_string()).collect(),
    }
}

fn clearances() -> Vec<Clearance> {
    vec![
        clearance("UNCLASSIFIED", &[]),
        clearance("CUI", &["NOFORN"]),
        clearance("CONFIDENTIAL", &["REL TO FRA"]),
        clearance("SECRET", &["REL TO GBR"]),
        clearance("SECRET", &["NOFORN"]),
        clearance("TOP SECRET", &["REL TO USA"]),
        clearance("TOP SECRET", &["NOFORN", "ORCON", "REL TO USA"]),
        // Unknown to the scheme: permits nothing.
        clearance("SECRETT", &["NOFORN", "ORCON", "REL TO USA"]),
    ]
}

fn queries() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in DOCS {
        out.push(d.title.to_string());
        out.push(d.title.to_lowercase());
        out.push(d.publication.to_string());
        out.push(d.codeword.to_string());
        out.push(d.paraphrase.to_string());
        out.push(d.marking().banner());
        for (number, text) in d.paragraphs {
            out.push(number.to_string());
            out.push(format!("{} para {number}", d.publication));
            out.push(format!("paragraph {number}"));
            out.push(text.to_string());
        }
        for word in d.codeword.split_whitespace() {
            out.push(word.to_string());
        }
    }
    for q in [
        "*",
        "**",
        "?",
        ".",
        "-",
        "a",
        "s",
        "t",
        "x",
        "z",
        "1",
        "the",
        "of",
        "",
        "   ",
        "NOFORN",
        "ORCON",
        "REL TO USA",
        "REL TO GBR",
        "TOP SECRET",
        "SECRET",
        "classified plan",
        "convoy fuel planning",
        SHARED,
    ] {
        out.push(q.to_string());
    }
    out
}

fn doc_of(passage_id: &str) -> &str {
    passage_id.split('#').next().unwrap_or(passage_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_above_a_clearance_is_ever_retrieved() {
    let corpus = tempfile::tempdir().expect("corpus dir");
    for d in DOCS {
        std::fs::write(corpus.path().join(format!("{}.md", d.id)), d.markdown()).expect("write");
    }
    let index = TestIndex::new();
    let report = index.index(&[corpus.path().to_path_buf()]);
    assert!(report.failed.is_empty(), "{report:#?}");
    assert_eq!(report.indexed, DOCS.len());

    let scheme = MarkingScheme::default();
    let truth: HashMap<&str, Marking> = DOCS.iter().map(|d| (d.id, d.marking())).collect();
    let retriever = index.retriever();
    let indexes = retriever.indexes().clone();
    let queries = queries();
    let mut vectors: HashMap<&str, Vec<f32>> = HashMap::new();
    for q in &queries {
        if !q.trim().is_empty() {
            let v = embedder()
                .embed_queries(&[q.trim()])
                .expect("embed")
                .remove(0);
            vectors.insert(q.as_str(), v);
        }
    }
    let mut probes = 0usize;
    let mut hits_seen = 0usize;

    for c in clearances() {
        let permitted = |doc: &str| scheme.permits(&c, &truth[doc]);
        for d in DOCS {
            assert_eq!(
                retriever.permits(Some(&c), &d.marking()),
                permitted(d.id),
                "Retriever::permits agrees with the scheme"
            );
            assert!(retriever.permits(None, &d.marking()));
        }
        let filter = PassageFilter {
            clearance: Some(c.clone()),
            ..PassageFilter::default()
        };
        let resolved = indexes.resolve_clearance(&filter).expect("resolve");
        for q in &queries {
            for mode in [SearchMode::Bm25, SearchMode::Dense, SearchMode::Hybrid] {
                probes += 1;
                let hits = match retriever.search(q, mode, 10, &filter) {
                    Ok(hits) => hits,
                    Err(RetrieveError::EmptyQuery) if q.trim().is_empty() => continue,
                    Err(e) => panic!("{q:?} {mode:?}: {e}"),
                };
                hits_seen += hits.len();
                for h in &hits {
                    assert!(
                        permitted(&h.doc_id),
                        "{c:?} {mode:?} {q:?} returned {} ({})",
                        h.doc_id,
                        h.marking
                    );
                }
            }
            // Both indexes directly, with the resolved filter: proves the filter is in the
            // queries themselves, not only in the retriever's final check.
            let Some(resolved) = &resolved else { continue };
            probes += 1;
            for (id, _) in indexes.keyword.search(q, 50, resolved).expect("bm25") {
                assert!(permitted(doc_of(&id)), "{c:?} keyword {q:?} returned {id}");
            }
            if let Some(v) = vectors.get(q.as_str()) {
                probes += 1;
                for (id, _) in indexes.vectors.search(v, 50, resolved).expect("dense") {
                    assert!(permitted(doc_of(&id)), "{c:?} vectors {q:?} returned {id}");
                }
            }
        }

        // Not over-restricted: every permitted document is found by its title, and a
        // restricted search still fills k when enough permitted passages exist.
        for d in DOCS.iter().filter(|d| permitted(d.id)) {
            let hits = retriever
                .search(d.title, SearchMode::Bm25, 5, &filter)
                .expect("search");
            assert!(
                hits.iter().any(|h| h.doc_id == d.id),
                "{c:?} cannot find permitted {}",
                d.id
            );
        }
        let permitted_docs = DOCS.iter().filter(|d| permitted(d.id)).count();
        for mode in [SearchMode::Bm25, SearchMode::Dense, SearchMode::Hybrid] {
            let hits = retriever
                .search("convoy fuel planning", mode, 5, &filter)
                .expect("search");
            let expected = if permitted_docs == 0 { 0 } else { 5 };
            assert_eq!(hits.len(), expected, "{c:?} {mode:?}: full k");
        }

        // Drafting retrieves with the request's filter for the task and every template query.
        let store = tempfile::tempdir().expect("draft store");
        let drafter = drafter_over(retriever.clone(), None, store.path());
        for task in [
            "Plan convoy refuelling and fuel resupply for the attack",
            "Insert the reconnaissance team at landing zone WREN",
            "Report on source NIGHTJAR and the northern logistics hub deception",
        ] {
            probes += 1;
            let request = DraftRequest {
                section: "opord-sustainment".to_string(),
                task: task.to_string(),
                guidance: None,
                mode: DraftMode::Extractive,
                sources: 8,
                filter: filter.clone(),
            };
            match drafter.draft(&request, &|_| {}).await {
                Ok(record) => {
                    for s in &record.sources {
                        assert!(
                            permitted(&s.hit.doc_id),
                            "{c:?} draft {task:?} was given {}",
                            s.hit.doc_id
                        );
                    }
                    for id in &record.dropped_sources {
                        assert!(permitted(doc_of(id)), "{c:?} draft dropped {id}");
                    }
                    for d in DOCS.iter().filter(|d| !permitted(d.id)) {
                        let prompt = format!("{:?}", record.prompt);
                        assert!(
                            !prompt.contains(d.paragraphs[0].1),
                            "{c:?} draft prompt holds text of {}",
                            d.id
                        );
                    }
                }
                Err(DraftError::NoSources) if permitted_docs == 0 => {}
                Err(e) => panic!("{c:?} draft {task:?}: {e}"),
            }
        }
    }
    doctrina_tests::report(
        "leak-probe-indexes",
        &format!(
            "leak probe (indexes): {probes} probes ({hits_seen} hits checked) over {} clearances, 0 leaks",
            clearances().len()
        ),
    );
}

/// The same corpus through the web app, as low-clearance accounts: the search API and page
/// (every mode), the publication facet, the documents list and its filter, document URLs,
/// drafts, a high-clearance colleague's plan (list, section, cited sources, export) and the
/// error bodies. Nothing above the account's access appears: no passage, title,
/// publication, codeword or count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_above_a_clearance_leaks_through_the_web_app() {
    use serde_json::{Value, json};

    let corpus = tempfile::tempdir().expect("corpus dir");
    for d in DOCS {
        std::fs::write(corpus.path().join(format!("{}.md", d.id)), d.markdown()).expect("write");
    }
    let index = TestIndex::new();
    let report = index.index(&[corpus.path().to_path_buf()]);
    assert!(report.failed.is_empty(), "{report:#?}");
    let store = tempfile::tempdir().expect("store");
    let drafter = drafter_over(index.retriever(), None, store.path());
    let state = doctrina_tests::app_state(drafter, store.path());
    let accounts = [
        ("u-only", clearance("UNCLASSIFIED", &[])),
        ("cui-nf", clearance("CUI", &["NOFORN"])),
        ("c-fra", clearance("CONFIDENTIAL", &["REL TO FRA"])),
        ("s-gbr", clearance("SECRET", &["REL TO GBR"])),
        ("ts-usa", clearance("TOP SECRET", &["REL TO USA"])),
    ];
    for (name, c) in &accounts {
        state
            .auth
            .add_user(&doctrina_auth::NewUser {
                name: name.to_string(),
                password: doctrina_tests::PASSWORD.to_string(),
                roles: vec![
                    doctrina_auth::Role::Officer,
                    doctrina_auth::Role::Evaluator,
                    doctrina_auth::Role::Custodian,
                ],
                clearance: c.clone(),
            })
            .expect("account");
    }
    let server = doctrina_tests::serve_state(state).await;
    let base = format!("http://{}", server.addr);
    let scheme = MarkingScheme::default();

    // A colleague cleared for everything drafts from the most restricted documents.
    let staff = doctrina_tests::signed_in(&base, "staff").await;
    let post = |client: &reqwest::Client, path: &str, body: Value| {
        let request = client.post(format!("{base}{path}")).json(&body);
        async move {
            let r = request.send().await.expect("request");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (_, plan) = post(
        &staff,
        "/api/plans",
        json!({"title": "OPORD 9", "kind": "operation-order"}),
    )
    .await;
    let plan_id = plan["id"].as_str().unwrap().to_string();
    let (_, secret_section) = post(
        &staff,
        &format!("/api/plans/{plan_id}/sections"),
        json!({"template": "opord-sustainment", "task": "Operation MIRAGE LANTERN feints and source NIGHTJAR"}),
    )
    .await;
    let secret_section = secret_section["id"].as_str().unwrap().to_string();
    let (status, draft) = post(
        &staff,
        &format!("/api/sections/{secret_section}/draft?stream=false"),
        json!({"mode": "extractive", "sources": 8}),
    )
    .await;
    assert_eq!(status, 201, "{draft}");
    let (_, open_section) = post(
        &staff,
        &format!("/api/plans/{plan_id}/sections"),
        json!({"template": "opord-sustainment", "task": "Convoy fuel planning"}),
    )
    .await;
    let open_section = open_section["id"].as_str().unwrap().to_string();

    let mut probes = 0usize;
    for (name, c) in &accounts {
        let client = doctrina_tests::signed_in(&base, name).await;
        let permitted = |d: &Doc| scheme.permits(c, &d.marking());
        let hidden: Vec<&Doc> = DOCS.iter().filter(|d| !permitted(d)).collect();
        let visible = DOCS.len() - hidden.len();
        // What must never appear: hidden documents' ids, titles, publications, codewords
        // and paragraph texts (unless the probe itself echoes them, e.g. a search box).
        let secrets: Vec<String> = hidden
            .iter()
            .flat_map(|d| {
                let mut s = vec![
                    d.id.to_string(),
                    d.title.to_lowercase(),
                    d.publication.to_lowercase(),
                    d.codeword.to_lowercase(),
                ];
                s.extend(d.paragraphs.iter().map(|(_, t)| t.to_lowercase()));
                s
            })
            .collect();
        let check = |what: &str, echo: &str, body: &str| {
            let body = body.to_lowercase();
            let echo = echo.to_lowercase();
            for s in &secrets {
                if !echo.contains(s.as_str()) && !s.contains(echo.trim()) || echo.trim().is_empty()
                {
                    assert!(!body.contains(s.as_str()), "{name}: {what} reveals {s:?}");
                }
            }
        };
        let get = |path: String| {
            let request = client.get(format!("{base}{path}"));
            async move {
                let r = request.send().await.expect("request");
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        for q in queries() {
            if q.trim().is_empty() {
                continue;
            }
            let enc = doctrina_web::user::percent_encode(&q);
            for mode in ["bm25", "dense", "hybrid"] {
                probes += 1;
                let (status, body) = get(format!("/api/search?q={enc}&mode={mode}&k=20")).await;
                assert_eq!(status, 200, "{name} {q:?} {mode}: {body}");
                let hits: Vec<Value> = serde_json::from_str(&body).unwrap();
                for h in &hits {
                    let doc = DOCS.iter().find(|d| d.id == h["doc_id"]).unwrap();
                    assert!(permitted(doc), "{name} {mode} {q:?} got {}", doc.id);
                    // Raw BM25 moves with documents the reader cannot see: only a rank.
                    if !hidden.is_empty()
                        && let (Some(score), Some(rank)) = (
                            h["scores"]["bm25"].as_f64(),
                            h["scores"]["bm25_rank"].as_f64(),
                        )
                    {
                        assert!(
                            (score - 1.0 / rank).abs() < 1e-6,
                            "{name} {mode} {q:?}: raw bm25 {score} shown"
                        );
                    }
                }
                check(&format!("search API {mode} {q:?}"), "", &body);
            }
            probes += 1;
            let (status, page) = get(format!("/?q={enc}")).await;
            assert_eq!(status, 200);
            check(&format!("search page {q:?}"), &q, &page);
            probes += 1;
            let (_, list) = get(format!("/api/documents?q={enc}")).await;
            check(&format!("documents filter {q:?}"), "", &list);
        }
        // The list and its counts.
        probes += 2;
        let (_, list) = get("/api/documents".into()).await;
        let list: Value = serde_json::from_str(&list).unwrap();
        assert_eq!(
            list["documents"].as_array().unwrap().len(),
            visible,
            "{name}"
        );
        let (_, page) = get("/documents".into()).await;
        check("documents page", "", &page);
        // Document URLs: a hidden document is "not found", exactly like a missing one.
        let (_, missing) = get("/api/documents/no-such-document".into()).await;
        for d in &hidden {
            probes += 2;
            let (status, body) = get(format!("/api/documents/{}", d.id)).await;
            assert_eq!(status, 404, "{name} {}", d.id);
            assert_eq!(
                body.replace(d.id, "X"),
                missing.replace("no-such-document", "X"),
                "same answer as a missing document"
            );
            let (status, page) = get(format!("/documents/{}", d.id)).await;
            assert_eq!(status, 404);
            check("document page", d.id, &page);
        }
        // Their own drafts see only what they may see.
        let (_, plan) = post(
            &client,
            "/api/plans",
            json!({"title": "mine", "kind": "operation-order"}),
        )
        .await;
        let mine = plan["id"].as_str().unwrap().to_string();
        for task in [
            "Operation MIRAGE LANTERN feints and source NIGHTJAR",
            "how we will trick the enemy about where the main attack comes",
            "Convoy fuel planning for the attack",
        ] {
            probes += 1;
            let (_, section) = post(
                &client,
                &format!("/api/plans/{mine}/sections"),
                json!({"template": "opord-sustainment", "task": task}),
            )
            .await;
            let sid = section["id"].as_str().unwrap().to_string();
            let (status, body) = post(
                &client,
                &format!("/api/sections/{sid}/draft?stream=false"),
                json!({"mode": "extractive", "sources": 8}),
            )
            .await;
            if visible == 0 {
                assert_eq!(status, 422, "{body}");
            } else {
                assert_eq!(status, 201, "{body}");
            }
            check(
                &format!("draft {task:?}"),
                "",
                &body.to_string().replace(task, ""),
            );
            let (_, page) = get(format!("/sections/{sid}")).await;
            check("own section page", task, &page.replace(task, ""));
        }
        probes += 1;
        let (_, export) = get(format!("/api/plans/{mine}/export?format=markdown")).await;
        check("own export", "", &export);

        // The colleague's plan: the restricted section does not exist for them.
        probes += 5;
        let (_, detail) = get(format!("/api/plans/{plan_id}")).await;
        let sections: Vec<String> = serde_json::from_str::<Value>(&detail).unwrap()["sections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        let section_hidden = {
            // Staff's extractive draft drew from the most restricted documents; whether this
            // account may see it follows from those documents' markings.
            let record = doctrina_draft::DraftStore::open(&store.path().join("drafts.sqlite"))
                .unwrap()
                .get(draft["version"]["draft_id"].as_str().unwrap())
                .unwrap()
                .unwrap();
            record
                .sources
                .iter()
                .any(|s| !scheme.permits(c, &Marking::parse_banner(&s.hit.marking)))
        };
        assert_eq!(
            !sections.contains(&secret_section),
            section_hidden,
            "{name}"
        );
        assert!(sections.contains(&open_section));
        for path in [
            format!("/api/sections/{secret_section}"),
            format!("/sections/{secret_section}"),
            format!("/api/sections/{secret_section}/sources/1"),
            format!("/sections/{secret_section}/sources/1"),
        ] {
            let (status, body) = get(path.clone()).await;
            if section_hidden {
                assert_eq!(status, 404, "{name} {path}");
                check(&path, "", &body);
            }
        }
        let (_, export) = get(format!("/api/plans/{plan_id}/export?format=json")).await;
        check("colleague's export", "", &export);
        // The plan list counts only the sections they may see.
        probes += 2;
        let (_, plans) = get("/api/plans".into()).await;
        let plans: Value = serde_json::from_str(&plans).unwrap();
        let colleague = plans
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == plan_id.as_str())
            .expect("the plan is listed");
        assert_eq!(
            colleague["section_count"],
            if section_hidden { 1 } else { 2 },
            "{name}: a hidden section is not counted"
        );
        let (_, page) = get("/plans".into()).await;
        check("plans page", "", &page);
    }
    doctrina_tests::report(
        "leak-probe-web",
        &format!(
            "leak probe (web): {probes} probes over {} accounts (search API and page, documents, \
             document views, drafts, sections, sources, exports, plans), 0 leaks",
            accounts.len()
        ),
    );
    server.shutdown().await.unwrap();
}
