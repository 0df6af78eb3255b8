//! Query translation for cross-lingual search: the inference server translates a Korean
//! question into English (or the reverse) with the glossary's terms, and retrieval
//! searches the translation beside the question ([`doctrina_retrieve::QueryTranslator`]).
//!
//! Retrieval is synchronous and runs on any thread (a request's blocking task, the command
//! line, an evaluation run), so the translator drives its chat model on a small runtime of
//! its own, from a scoped thread: it never blocks on a runtime it is called from. A
//! translation is bounded in time, checked (one line, in the language asked for, not a
//! wall of text) and cached; whatever fails is reported, and the search goes on without it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use doctrina_korean::Language;
use doctrina_retrieve::{QueryTranslator, TranslationRequest};
use doctrina_types::QueryTranslation;

use crate::inference::{ChatModel, Message};

/// Translations kept, most recent last.
const CACHE_SIZE: usize = 512;

const SYSTEM_KO_EN: &str = "You translate Korean search questions into English for searching \
US Army doctrine. Use the glossary's English terms where they apply. Keep acronyms, numbers \
and publication names as written. Answer with the English question only.";

const SYSTEM_EN_KO: &str = "You translate English search questions into Korean for searching \
Korean military regulations and field manuals. Use the glossary's Korean terms where they \
apply. Keep acronyms, numbers and article numbers as written. Answer with the Korean \
question only.";

/// Two worked turns per direction: without them a small model answers the question
/// instead of translating it.
const SHOTS_KO_EN: [(&str, &str); 2] = [
    (
        "Glossary:\n작전명령 = operation order\n\nQuestion: 작전명령의 실행 문단에는 무엇을 쓰나?",
        "What goes in the execution paragraph of an operation order?",
    ),
    (
        "Question: 야간에 차량 몇 대가 필요한가?",
        "How many vehicles are needed at night?",
    ),
];

const SHOTS_EN_KO: [(&str, &str); 2] = [
    (
        "Glossary:\noperation order = 작전명령\n\nQuestion: What goes in the execution paragraph of an operation order?",
        "작전명령의 실행 문단에는 무엇을 쓰나?",
    ),
    (
        "Question: How many vehicles are needed at night?",
        "야간에 차량 몇 대가 필요한가?",
    ),
];

/// The glossary pairs given with one question, at most.
const MAX_TERMS: usize = 8;

/// The conversation that asks for one translation.
pub fn messages(request: &TranslationRequest<'_>) -> Vec<Message> {
    let (system, shots) = match request.to {
        Language::Korean => (SYSTEM_EN_KO, SHOTS_EN_KO),
        _ => (SYSTEM_KO_EN, SHOTS_KO_EN),
    };
    let mut messages = vec![Message::system(system)];
    for (question, answer) in shots {
        messages.push(Message::user(question));
        messages.push(Message::assistant(answer));
    }
    let mut user = String::new();
    if !request.terms.is_empty() {
        user.push_str("Glossary:\n");
        for line in glossary_lines(request) {
            user.push_str(&line);
            user.push('\n');
        }
        user.push('\n');
    }
    user.push_str("Question: ");
    user.push_str(request.query.trim());
    messages.push(Message::user(user));
    messages
}

/// The glossary pairs given with `request`, as the translator sees them (`유류 = fuel`).
fn glossary_lines(request: &TranslationRequest<'_>) -> Vec<String> {
    request
        .terms
        .iter()
        .take(MAX_TERMS)
        .map(|(term, translation)| format!("{term} = {translation}"))
        .collect()
}

/// The translation in a model's answer: its first non-empty line, without a `Question:`
/// label or surrounding quotes. Refused when it is not in `to` (a model that answered or
/// echoed instead of translating), or far longer than the question (it answered).
pub fn clean(answer: &str, query: &str, to: Language) -> Result<String, String> {
    let line = answer
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or("the translator's answer was empty")?;
    let mut text = line;
    for label in [
        "Question:",
        "Translation:",
        "English:",
        "Korean:",
        "질문:",
        "번역:",
    ] {
        if let Some(rest) = text.strip_prefix(label) {
            text = rest.trim();
        }
    }
    let text = text
        .trim_matches(|c: char| matches!(c, '"' | '“' | '”' | '\'' | '`'))
        .trim();
    if text.is_empty() {
        return Err("the translator's answer was empty".into());
    }
    if text.contains("<|") || text.contains("<start_of_turn>") || text.contains("</s>") {
        return Err("the translator's answer holds chat-template tokens".into());
    }
    let language = doctrina_korean::detect(text);
    let expected = match to {
        Language::Korean => language == Language::Korean,
        _ => language == Language::English,
    };
    if !expected {
        return Err(format!(
            "the translator's answer is not in {}: {}",
            language_name(to),
            abbreviate(text)
        ));
    }
    // A translation is about as long as its question (Korean is the denser script: an
    // English translation runs to about three times the characters).
    let limit = query.chars().count() * 4 + 40;
    if text.chars().count() > limit {
        return Err(format!(
            "the translator's answer is far longer than the question: {}",
            abbreviate(text)
        ));
    }
    Ok(text.to_string())
}

fn language_name(language: Language) -> &'static str {
    match language {
        Language::Korean => "Korean",
        _ => "English",
    }
}

fn abbreviate(text: &str) -> String {
    let mut out: String = text.chars().take(80).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// Translates queries through a chat model (the inference server), bounded by `timeout`.
pub struct LlmTranslator {
    chat: Arc<dyn ChatModel>,
    timeout: Duration,
    runtime: Option<tokio::runtime::Runtime>,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for LlmTranslator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmTranslator")
            .field("server", &self.chat.server())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Cache {
    entries: HashMap<String, QueryTranslation>,
    order: VecDeque<String>,
}

impl Cache {
    fn get(&self, key: &str) -> Option<QueryTranslation> {
        self.entries.get(key).cloned()
    }

    fn put(&mut self, key: String, value: QueryTranslation) {
        if self.entries.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > CACHE_SIZE {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
    }
}

impl LlmTranslator {
    /// `chat` should answer briefly and deterministically (temperature 0, a few dozen
    /// tokens): the composition root gives it its own client built that way.
    pub fn new(chat: Arc<dyn ChatModel>, timeout: Duration) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("doctrina-translate")
            .enable_all()
            .build()?;
        Ok(Self {
            chat,
            timeout,
            runtime: Some(runtime),
            cache: Mutex::new(Cache::default()),
        })
    }

    fn translator(&self) -> String {
        format!("{}@{}", self.chat.model(), self.chat.server())
    }

    async fn ask(&self, request: &TranslationRequest<'_>) -> Result<String, String> {
        let messages = messages(request);
        let completion = tokio::time::timeout(self.timeout, self.chat.complete(&messages, &|_| {}))
            .await
            .map_err(|_| {
                format!(
                    "the inference server did not translate within {} ms",
                    self.timeout.as_millis()
                )
            })?
            .map_err(|e| e.to_string())?;
        clean(&completion.text, request.query, request.to)
    }
}

impl QueryTranslator for LlmTranslator {
    fn translate(&self, request: &TranslationRequest<'_>) -> Result<QueryTranslation, String> {
        let terms = glossary_lines(request);
        let key = format!(
            "{}\u{1f}{}\u{1f}{}",
            request.to.code(),
            request.query.trim(),
            terms.join("\u{1e}")
        );
        if let Some(mut hit) = self.cache.lock().map_err(|e| e.to_string())?.get(&key) {
            hit.cached = true;
            hit.elapsed_ms = 0;
            return Ok(hit);
        }
        let runtime = self
            .runtime
            .as_ref()
            .ok_or("the translator has shut down")?;
        let start = Instant::now();
        // A thread of its own, so a caller on a runtime's worker never blocks on it.
        let text = std::thread::scope(|scope| {
            scope
                .spawn(|| runtime.block_on(self.ask(request)))
                .join()
                .unwrap_or_else(|_| Err("the translation panicked".to_string()))
        })?;
        let translation = QueryTranslation {
            text,
            language: request.to.code().to_string(),
            translator: self.translator(),
            terms,
            elapsed_ms: start.elapsed().as_millis() as u64,
            cached: false,
        };
        self.cache
            .lock()
            .map_err(|e| e.to_string())?
            .put(key, translation.clone());
        Ok(translation)
    }
}

impl Drop for LlmTranslator {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime (an app dropped
        // at the end of an async test or request); let its thread wind down on its own.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(
        query: &'a str,
        to: Language,
        terms: &'a [(String, String)],
    ) -> TranslationRequest<'a> {
        TranslationRequest {
            query,
            from: if to == Language::English {
                Language::Korean
            } else {
                Language::English
            },
            to,
            terms,
        }
    }

    #[test]
    fn the_glossary_terms_and_the_question_come_last() {
        let terms = vec![("유류".to_string(), "fuel".to_string())];
        let messages = messages(&request(
            "공격 시 유류 여유분은?",
            Language::English,
            &terms,
        ));
        let last = &messages.last().unwrap().content;
        assert_eq!(
            last,
            "Glossary:\n유류 = fuel\n\nQuestion: 공격 시 유류 여유분은?"
        );
        assert!(messages[0].content.contains("into English"));
        let reverse = messages_for_korean();
        assert!(reverse[0].content.contains("into Korean"));
    }

    fn messages_for_korean() -> Vec<Message> {
        messages(&request("How much fuel?", Language::Korean, &[]))
    }

    #[test]
    fn a_translation_is_one_line_in_the_language_asked_for() {
        let q = "공격 시 유류 여유분은 얼마인가?";
        assert_eq!(
            clean(
                "Question: \"How much fuel margin is added for an attack?\"\n\nNote: ...",
                q,
                Language::English
            )
            .unwrap(),
            "How much fuel margin is added for an attack?"
        );
        // An answer in the question's own language is an echo, not a translation.
        let echo = clean("공격 시 유류 여유분은 10%이다.", q, Language::English).unwrap_err();
        assert!(echo.contains("not in English"), "{echo}");
        assert!(
            clean("  \n ", q, Language::English)
                .unwrap_err()
                .contains("empty")
        );
        assert!(clean("<|im_start|>user", q, Language::English).is_err());
        let long = "The fuel margin is ".to_string() + &"a very long answer ".repeat(20);
        assert!(
            clean(&long, q, Language::English)
                .unwrap_err()
                .contains("longer")
        );
        assert_eq!(
            clean(
                "공격 시 유류 여유분은?",
                "Fuel margin for an attack?",
                Language::Korean
            )
            .unwrap(),
            "공격 시 유류 여유분은?"
        );
    }
}
