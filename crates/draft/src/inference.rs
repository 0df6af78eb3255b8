//! Client for any OpenAI-compatible chat server (`/v1/chat/completions`): llama.cpp's
//! llama-server, vLLM, Ollama. Streaming over SSE, with connect / first-token / total
//! timeouts, retries with backoff for connection errors and 5xx (only before anything has
//! streamed), a health check and the server's `/tokenize` when it has one.
//!
//! Every failure names the server and the cause; a stream that breaks keeps what it
//! delivered, marked incomplete.

use std::time::{Duration, Instant};

use doctrina_types::config::InferenceConfig;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: "system".into(),
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: "user".into(),
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: "assistant".into(),
            content: content.into(),
        }
    }
}

/// How many times a streamed completion may write the same sentence: at the third, the
/// stream is stopped (`finish_reason` `repetition`). Small models fall into loops of one or
/// two sentences that run on to `max_tokens` (a minute or more on CPU); a repetition
/// penalty cannot stop them without also penalising quotes of the sources, since the loops
/// are longer than its window.
pub const REPETITION_LIMIT: usize = 3;

/// `finish_reason` of a completion stopped by [`REPETITION_LIMIT`].
pub const FINISH_REPETITION: &str = "repetition";

/// `finish_reason` of a completion the server ended at `max_tokens` (OpenAI's wording).
pub const FINISH_LENGTH: &str = "length";

/// What a draft stopped by [`REPETITION_LIMIT`] records as its `error` (the web page shows
/// it in the reader's language: `templates/i18n/ko.toml` has it word for word).
pub const REPETITION_STOPPED: &str =
    "the model wrote the same sentence 3 times; generation was stopped there";

/// What a draft the server stopped at `max_tokens` ([`FINISH_LENGTH`]) records as its
/// `error`: its last sentence is most likely cut (`templates/i18n/ko.toml` has it word for
/// word).
pub const LENGTH_STOPPED: &str = "the model reached the token limit (inference.max_tokens) before it finished; the last sentence may be cut off";

/// The sentence a text has written [`REPETITION_LIMIT`] times, if any: complete sentences
/// (a sentence still being written does not count), compared without their citations,
/// list markers, case or spacing. Sentences of fewer than 5 letters or digits (`없음.`)
/// are never counted; Korean is dense, so `라는 출처는 [3.9].`, the 1.5B model's loop in one
/// draft, is counted.
pub fn repeated_sentence(text: &str) -> Option<String> {
    let bounds = doctrina_korean::sentences(text);
    // The last piece is complete only if something follows its end.
    let complete = match bounds.last() {
        Some(&(_, end)) if text[..end].trim_end().ends_with(['.', '!', '?', '。']) => bounds.len(),
        _ => bounds.len().saturating_sub(1),
    };
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for &(start, end) in &bounds[..complete] {
        // Citation marks out and spacing squashed, as a sentence is shown.
        let sentence = crate::cite::strip_marks(&text[start..end]);
        let key = sentence
            .trim_start_matches(['-', '*', '•', ' '])
            .to_lowercase();
        if key.chars().filter(|c| c.is_alphanumeric()).count() < 5 {
            continue;
        }
        let count = seen.entry(key).or_default();
        *count += 1;
        if *count >= REPETITION_LIMIT {
            return Some(text[start..end].trim().to_string());
        }
    }
    None
}

/// A finished (or broken-off) completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    pub model: String,
    pub finish_reason: Option<String>,
    pub first_token_ms: Option<u64>,
    pub total_ms: u64,
    /// Tokens generated, as the server reports them (`usage.completion_tokens`, or
    /// llama-server's `timings.predicted_n`).
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    /// Generation speed after the first token: llama-server's own figure when it gives one,
    /// else tokens over the time from the first token to the end.
    #[serde(default)]
    pub tokens_per_second: Option<f64>,
}

/// Token count and generation speed from an answer's `usage` or llama-server `timings`;
/// `counted` (the content events a stream delivered) when the answer has no count.
fn token_figures(
    answer: &Value,
    counted: Option<u64>,
    first_token_ms: Option<u64>,
    total_ms: u64,
) -> (Option<u64>, Option<f64>) {
    let tokens = answer["usage"]["completion_tokens"]
        .as_u64()
        .or_else(|| answer["timings"]["predicted_n"].as_u64())
        .or(counted);
    let rate = answer["timings"]["predicted_per_second"]
        .as_f64()
        .or_else(|| {
            let generating = total_ms.saturating_sub(first_token_ms.unwrap_or(0));
            tokens
                .filter(|_| generating > 0)
                .map(|t| t as f64 * 1000.0 / generating as f64)
        });
    (tokens, rate)
}

/// What went wrong talking to the inference server.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InferenceError {
    #[error("inference server {server} is unreachable: {cause}")]
    Unreachable { server: String, cause: String },
    #[error("inference server {server} sent no first token within {timeout_ms} ms")]
    FirstTokenTimeout { server: String, timeout_ms: u64 },
    #[error("inference server {server} did not finish within {timeout_ms} ms ({} characters kept, marked incomplete)", partial.chars().count())]
    TotalTimeout {
        server: String,
        timeout_ms: u64,
        partial: String,
    },
    #[error("inference server {server} answered HTTP {status}: {body}")]
    Http {
        server: String,
        status: u16,
        body: String,
    },
    #[error("inference server {server} sent an invalid response: {cause}")]
    InvalidResponse {
        server: String,
        cause: String,
        partial: String,
    },
    #[error("inference server {server} cut the stream off ({} characters kept, marked incomplete): {cause}", partial.chars().count())]
    StreamCut {
        server: String,
        cause: String,
        partial: String,
    },
    #[error("inference server {server} returned empty output")]
    Empty { server: String },
}

impl InferenceError {
    /// Text that streamed before the failure (kept in the draft record).
    pub fn partial(&self) -> &str {
        match self {
            Self::TotalTimeout { partial, .. }
            | Self::InvalidResponse { partial, .. }
            | Self::StreamCut { partial, .. } => partial,
            _ => "",
        }
    }
}

/// The answer to a closed question ([`ChatModel::choose`]): which of the offered words the
/// model answered, and how likely it found each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Index into the offered choices; `None` when the answer is none of them.
    pub index: Option<usize>,
    /// The answer as the server sent it.
    pub answer: String,
    /// Probability of each choice as the first token of the answer, normalised over the
    /// choices (`None` when the server gives no log-probabilities).
    pub probabilities: Option<Vec<f32>>,
}

/// The choice an answer names: the first choice its first word begins (case and
/// punctuation ignored), so `Supports.` names `SUPPORTS`.
pub fn choice_of(answer: &str, choices: &[&str]) -> Option<usize> {
    let word: String = answer
        .split_whitespace()
        .next()?
        .chars()
        .filter(|c| c.is_alphabetic())
        .collect::<String>()
        .to_uppercase();
    if word.is_empty() {
        return None;
    }
    choices
        .iter()
        .position(|c| c.to_uppercase() == word)
        .or_else(|| {
            choices
                .iter()
                .position(|c| c.to_uppercase().starts_with(&word) && word.len() >= 2)
        })
}

/// The probability of each choice from the first token's top log-probabilities: a token
/// counts for the choice it begins (`SUP` for `SUPPORTS`, `NO` for `NO`), tokens that begin
/// none are left out, and the masses are normalised over the choices. `None` when no token
/// begins a choice.
pub fn choice_probabilities(top: &[(String, f64)], choices: &[&str]) -> Option<Vec<f32>> {
    let upper: Vec<String> = choices.iter().map(|c| c.to_uppercase()).collect();
    let mut mass = vec![0f64; choices.len()];
    for (token, logprob) in top {
        let token = token.trim().to_uppercase();
        if token.is_empty() {
            continue;
        }
        if let Some(i) = upper.iter().position(|c| c.starts_with(&token)) {
            mass[i] += logprob.exp();
        }
    }
    let total: f64 = mass.iter().sum();
    (total > 0.0).then(|| mass.iter().map(|m| (m / total) as f32).collect())
}

/// A chat model behind a server. `on_delta` sees each streamed piece of text.
pub trait ChatModel: Send + Sync {
    fn server(&self) -> &str;
    fn model(&self) -> &str;
    fn complete<'a>(
        &'a self,
        messages: &'a [Message],
        on_delta: &'a (dyn Fn(&str) + Send + Sync),
    ) -> BoxFuture<'a, Result<Completion, InferenceError>>;
    /// Whether the server constrains generation with a GBNF grammar (llama-server does;
    /// detected from its `/props`). Servers that cannot are drafted without one.
    fn supports_grammar(&self) -> BoxFuture<'_, bool> {
        Box::pin(async { false })
    }
    /// [`ChatModel::complete`] under a GBNF grammar (by default the grammar is ignored).
    fn complete_constrained<'a>(
        &'a self,
        messages: &'a [Message],
        grammar: &'a str,
        on_delta: &'a (dyn Fn(&str) + Send + Sync),
    ) -> BoxFuture<'a, Result<Completion, InferenceError>> {
        let _ = grammar;
        self.complete(messages, on_delta)
    }
    /// A closed question: the model answers with one of `choices` (under a grammar where the
    /// server takes one, at temperature 0), with each choice's probability where the server
    /// gives log-probabilities. By default, a plain completion whose first word is read.
    fn choose<'a>(
        &'a self,
        messages: &'a [Message],
        choices: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Choice, InferenceError>> {
        Box::pin(async move {
            let completion = self.complete(messages, &|_| {}).await?;
            Ok(Choice {
                index: choice_of(&completion.text, choices),
                answer: completion.text,
                probabilities: None,
            })
        })
    }
    /// Tokens the server counts for `text`, if it can tell (llama.cpp's `/tokenize`).
    fn count_tokens<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Option<usize>>;
    fn health(&self) -> BoxFuture<'_, Result<(), InferenceError>>;
    /// The server's context window, when known.
    fn context_tokens(&self) -> usize;
    fn max_tokens(&self) -> u32;
    fn temperature(&self) -> f32;
}

/// An OpenAI-compatible server over HTTP.
pub struct OpenAiChat {
    config: InferenceConfig,
    base: String,
    http: reqwest::Client,
    /// Whether the server takes a GBNF grammar, asked once.
    grammar: tokio::sync::OnceCell<bool>,
}

impl std::fmt::Debug for OpenAiChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiChat")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OpenAiChat {
    pub fn new(config: InferenceConfig) -> Result<Self, InferenceError> {
        let base = config.base_url.trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .no_proxy()
            .build()
            .map_err(|e| InferenceError::Unreachable {
                server: base.clone(),
                cause: e.to_string(),
            })?;
        Ok(Self {
            config,
            base,
            http,
            grammar: tokio::sync::OnceCell::new(),
        })
    }

    fn authorised(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.api_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    fn unreachable(&self, e: &reqwest::Error) -> InferenceError {
        let cause = if e.is_connect() {
            "connection refused or failed".to_string()
        } else if e.is_timeout() {
            format!("no connection within {} ms", self.config.connect_timeout_ms)
        } else {
            e.to_string()
        };
        InferenceError::Unreachable {
            server: self.base.clone(),
            cause,
        }
    }

    /// Sends the request, retrying connection errors and 5xx with exponential backoff.
    async fn send(
        &self,
        body: &Value,
        deadline: Instant,
    ) -> Result<reqwest::Response, InferenceError> {
        let url = format!("{}/v1/chat/completions", self.base);
        let mut attempt = 0;
        loop {
            let request = self.authorised(self.http.post(&url).json(body));
            let remaining = deadline.saturating_duration_since(Instant::now());
            let first_token = Duration::from_millis(self.config.first_token_timeout_ms);
            let outcome = tokio::time::timeout(remaining.min(first_token), request.send()).await;
            let retryable = match outcome {
                Err(_) => {
                    return Err(InferenceError::FirstTokenTimeout {
                        server: self.base.clone(),
                        timeout_ms: self.config.first_token_timeout_ms,
                    });
                }
                Ok(Err(e)) => {
                    let err = self.unreachable(&e);
                    if !(e.is_connect() || e.is_timeout()) || attempt >= self.config.retries {
                        return Err(err);
                    }
                    err
                }
                Ok(Ok(response)) => {
                    let status = response.status();
                    if status.is_success() {
                        return Ok(response);
                    }
                    let text = response.text().await.unwrap_or_default();
                    let err = InferenceError::Http {
                        server: self.base.clone(),
                        status: status.as_u16(),
                        body: text.chars().take(300).collect(),
                    };
                    if !status.is_server_error() || attempt >= self.config.retries {
                        return Err(err);
                    }
                    err
                }
            };
            attempt += 1;
            let backoff = self.config.retry_backoff_ms * (1 << (attempt - 1).min(6));
            tracing::warn!(error = %retryable, attempt, backoff_ms = backoff, "retrying inference request");
            tokio::time::sleep(Duration::from_millis(backoff)).await;
        }
    }

    /// Sends the completion request; returns when it started, its total deadline and the
    /// response (headers received).
    async fn start(
        &self,
        messages: &[Message],
        stream: bool,
        grammar: Option<&str>,
    ) -> Result<(Instant, Instant, reqwest::Response), InferenceError> {
        let started = Instant::now();
        let deadline = started + Duration::from_millis(self.config.total_timeout_ms);
        let mut body = json!({
            "model": self.config.model,
            "messages": messages,
            "stream": stream,
            "max_tokens": self.config.max_tokens,
            "temperature": self.config.temperature,
        });
        if stream {
            // The token count arrives in a last chunk (OpenAI's `stream_options`).
            body["stream_options"] = json!({"include_usage": true});
        }
        if let Some(grammar) = grammar {
            body["grammar"] = json!(grammar);
        }
        if self.config.cache_prompt {
            // llama-server reuses the KV cache of the longest matching prompt prefix
            // (the system prompt and the sources of a redraft); others ignore the field.
            body["cache_prompt"] = json!(true);
        }
        let response = self.send(&body, deadline).await?;
        Ok((started, deadline, response))
    }

    /// A completion, streamed or as one answer as configured, under `grammar` if given.
    async fn completion(
        &self,
        messages: &[Message],
        grammar: Option<&str>,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Completion, InferenceError> {
        if self.config.stream {
            self.stream(messages, grammar, on_delta).await
        } else {
            self.whole(messages, grammar, on_delta).await
        }
    }

    /// The JSON body of a non-streamed answer, read before `deadline`.
    async fn json_answer(
        &self,
        response: reqwest::Response,
        deadline: Instant,
    ) -> Result<Value, InferenceError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let bytes = tokio::time::timeout(remaining, response.bytes())
            .await
            .map_err(|_| InferenceError::TotalTimeout {
                server: self.base.clone(),
                timeout_ms: self.config.total_timeout_ms,
                partial: String::new(),
            })?
            .map_err(|e| InferenceError::StreamCut {
                server: self.base.clone(),
                cause: e.to_string(),
                partial: String::new(),
            })?;
        serde_json::from_slice(&bytes).map_err(|e| InferenceError::InvalidResponse {
            server: self.base.clone(),
            cause: format!("bad JSON: {e}"),
            partial: String::new(),
        })
    }

    /// The message text of an answer's choice; empty text is an error.
    fn message_text(&self, choice: &Value) -> Result<String, InferenceError> {
        let text = choice["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if text.trim().is_empty() {
            return Err(InferenceError::Empty {
                server: self.base.clone(),
            });
        }
        Ok(text)
    }

    /// One JSON answer (`"stream": false`), for servers or proxies that do not stream.
    async fn whole(
        &self,
        messages: &[Message],
        grammar: Option<&str>,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Completion, InferenceError> {
        let (started, deadline, response) = self.start(messages, false, grammar).await?;
        let answer = self.json_answer(response, deadline).await?;
        let choice = &answer["choices"][0];
        let text = self.message_text(choice)?;
        on_delta(&text);
        let total_ms = started.elapsed().as_millis() as u64;
        let (completion_tokens, tokens_per_second) = token_figures(&answer, None, None, total_ms);
        Ok(Completion {
            text,
            model: answer["model"]
                .as_str()
                .unwrap_or(&self.config.model)
                .to_string(),
            finish_reason: choice["finish_reason"].as_str().map(str::to_string),
            first_token_ms: Some(total_ms),
            total_ms,
            completion_tokens,
            tokens_per_second,
        })
    }

    async fn stream(
        &self,
        messages: &[Message],
        grammar: Option<&str>,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Completion, InferenceError> {
        let (started, deadline, response) = self.start(messages, true, grammar).await?;
        let mut stream = response.bytes_stream();
        let mut buffer: Vec<u8> = Vec::new();
        let mut text = String::new();
        let mut model = self.config.model.clone();
        let mut finish_reason = None;
        let mut first_token_ms = None;
        let mut last_figures: Option<Value> = None;
        let mut content_events: u64 = 0;
        let mut done = false;
        let first_token_deadline =
            started + Duration::from_millis(self.config.first_token_timeout_ms);
        while !done {
            let wait_until = if first_token_ms.is_none() {
                first_token_deadline.min(deadline)
            } else {
                deadline
            };
            let next = tokio::time::timeout(
                wait_until.saturating_duration_since(Instant::now()),
                stream.next(),
            )
            .await;
            let chunk = match next {
                Err(_) if first_token_ms.is_none() && wait_until == first_token_deadline => {
                    return Err(InferenceError::FirstTokenTimeout {
                        server: self.base.clone(),
                        timeout_ms: self.config.first_token_timeout_ms,
                    });
                }
                Err(_) => {
                    return Err(InferenceError::TotalTimeout {
                        server: self.base.clone(),
                        timeout_ms: self.config.total_timeout_ms,
                        partial: text,
                    });
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(InferenceError::StreamCut {
                        server: self.base.clone(),
                        cause: e.to_string(),
                        partial: text,
                    });
                }
                Ok(Some(Ok(bytes))) => bytes,
            };
            buffer.extend_from_slice(&chunk);
            while let Some(pos) = buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim();
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                let data = data.trim();
                if data == "[DONE]" {
                    done = true;
                    break;
                }
                let event: Value =
                    serde_json::from_str(data).map_err(|e| InferenceError::InvalidResponse {
                        server: self.base.clone(),
                        cause: format!("bad JSON in stream: {e}"),
                        partial: text.clone(),
                    })?;
                if let Some(error) = event.get("error") {
                    return Err(InferenceError::InvalidResponse {
                        server: self.base.clone(),
                        cause: format!("server error in stream: {error}"),
                        partial: text.clone(),
                    });
                }
                if let Some(m) = event.get("model").and_then(Value::as_str) {
                    model = m.to_string();
                }
                if event.get("usage").is_some_and(|u| !u.is_null())
                    || event.get("timings").is_some()
                {
                    last_figures = Some(event.clone());
                }
                let choice = &event["choices"][0];
                if let Some(delta) = choice["delta"]["content"].as_str()
                    && !delta.is_empty()
                {
                    first_token_ms.get_or_insert(started.elapsed().as_millis() as u64);
                    content_events += 1;
                    text.push_str(delta);
                    on_delta(delta);
                    // Only a delta that ends a sentence, or starts the next one after a
                    // space or line break, can complete a repeat.
                    if delta.contains(['.', '!', '?', '\n', ' '])
                        && repeated_sentence(&text).is_some()
                    {
                        // Dropping the response closes the connection, which stops
                        // llama-server generating.
                        finish_reason = Some(FINISH_REPETITION.to_string());
                        done = true;
                        break;
                    }
                }
                if let Some(reason) = choice["finish_reason"].as_str() {
                    finish_reason = Some(reason.to_string());
                }
            }
        }
        if !done && finish_reason.is_none() {
            return Err(InferenceError::StreamCut {
                server: self.base.clone(),
                cause: "the stream ended before the completion finished".to_string(),
                partial: text,
            });
        }
        if text.trim().is_empty() {
            return Err(InferenceError::Empty {
                server: self.base.clone(),
            });
        }
        let total_ms = started.elapsed().as_millis() as u64;
        // A stream stopped before the server sent its figures (a loop cut short) is
        // counted here: llama-server sends one token per event.
        let (completion_tokens, tokens_per_second) = token_figures(
            &last_figures.unwrap_or_default(),
            Some(content_events),
            first_token_ms,
            total_ms,
        );
        Ok(Completion {
            text,
            model,
            finish_reason,
            first_token_ms,
            total_ms,
            completion_tokens,
            tokens_per_second,
        })
    }
}

impl OpenAiChat {
    /// Whether the server takes a grammar: llama-server answers `/props` with its default
    /// generation settings.
    async fn ask_grammar(&self) -> bool {
        let request = self
            .authorised(self.http.get(format!("{}/props", self.base)))
            .timeout(Duration::from_millis(
                self.config.connect_timeout_ms.max(1_000),
            ));
        match request.send().await {
            Ok(r) if r.status().is_success() => r
                .json::<Value>()
                .await
                .is_ok_and(|props| props.get("default_generation_settings").is_some()),
            _ => false,
        }
    }

    /// [`ChatModel::choose`]: one short answer at temperature 0, under a grammar of the
    /// choices where the server takes one, with the first token's top log-probabilities.
    async fn closed_question(
        &self,
        messages: &[Message],
        choices: &[&str],
    ) -> Result<Choice, InferenceError> {
        let started = Instant::now();
        let deadline = started + Duration::from_millis(self.config.total_timeout_ms);
        let mut body = json!({
            "model": self.config.model,
            "messages": messages,
            "stream": false,
            "max_tokens": 4,
            "temperature": 0.0,
            "logprobs": true,
            "top_logprobs": 10,
        });
        if self.supports_grammar().await {
            let alternatives: Vec<String> = choices
                .iter()
                .map(|c| serde_json::to_string(c).expect("a string serialises"))
                .collect();
            body["grammar"] = json!(format!("root ::= {}", alternatives.join(" | ")));
        }
        if self.config.cache_prompt {
            body["cache_prompt"] = json!(true);
        }
        let response = self.send(&body, deadline).await?;
        let answer = self.json_answer(response, deadline).await?;
        let choice = &answer["choices"][0];
        let text = self.message_text(choice)?;
        let top: Vec<(String, f64)> = choice["logprobs"]["content"][0]["top_logprobs"]
            .as_array()
            .map(|top| {
                top.iter()
                    .filter_map(|t| {
                        Some((t["token"].as_str()?.to_string(), t["logprob"].as_f64()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Choice {
            index: choice_of(&text, choices),
            answer: text,
            probabilities: choice_probabilities(&top, choices),
        })
    }
}

impl ChatModel for OpenAiChat {
    fn server(&self) -> &str {
        &self.base
    }

    fn model(&self) -> &str {
        &self.config.model
    }

    fn complete<'a>(
        &'a self,
        messages: &'a [Message],
        on_delta: &'a (dyn Fn(&str) + Send + Sync),
    ) -> BoxFuture<'a, Result<Completion, InferenceError>> {
        Box::pin(self.completion(messages, None, on_delta))
    }

    fn supports_grammar(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move { *self.grammar.get_or_init(|| self.ask_grammar()).await })
    }

    fn choose<'a>(
        &'a self,
        messages: &'a [Message],
        choices: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Choice, InferenceError>> {
        Box::pin(self.closed_question(messages, choices))
    }

    fn complete_constrained<'a>(
        &'a self,
        messages: &'a [Message],
        grammar: &'a str,
        on_delta: &'a (dyn Fn(&str) + Send + Sync),
    ) -> BoxFuture<'a, Result<Completion, InferenceError>> {
        Box::pin(self.completion(messages, Some(grammar), on_delta))
    }

    fn count_tokens<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Option<usize>> {
        Box::pin(async move {
            let request = self
                .authorised(self.http.post(format!("{}/tokenize", self.base)))
                .json(&json!({ "content": text }))
                .timeout(Duration::from_millis(
                    self.config.first_token_timeout_ms.min(10_000),
                ));
            let response = request.send().await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            let body: Value = response.json().await.ok()?;
            body["tokens"].as_array().map(Vec::len)
        })
    }

    fn health(&self) -> BoxFuture<'_, Result<(), InferenceError>> {
        Box::pin(async move {
            let timeout = Duration::from_millis(self.config.connect_timeout_ms.max(1_000));
            let mut last = None;
            for path in ["/health", "/v1/models"] {
                let request = self
                    .authorised(self.http.get(format!("{}{path}", self.base)))
                    .timeout(timeout);
                match request.send().await {
                    Ok(r) if r.status().is_success() => return Ok(()),
                    Ok(r) => {
                        last = Some(InferenceError::Http {
                            server: self.base.clone(),
                            status: r.status().as_u16(),
                            body: format!("{path} not ready"),
                        })
                    }
                    Err(e) => last = Some(self.unreachable(&e)),
                }
            }
            Err(last.unwrap_or(InferenceError::Empty {
                server: self.base.clone(),
            }))
        })
    }

    fn context_tokens(&self) -> usize {
        self.config.context_tokens
    }

    fn max_tokens(&self) -> u32 {
        self.config.max_tokens
    }

    fn temperature(&self) -> f32 {
        self.config.temperature
    }
}

/// A conservative token estimate for when the server cannot count: about three characters
/// per token (real tokenizers average closer to four on English prose).
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentence_written_a_third_time_is_a_repetition() {
        assert!(REPETITION_STOPPED.contains(&format!(" {REPETITION_LIMIT} times")));
        let s = "The FSC delivers fuel to the combat trains [1.2]. ";
        // Twice is not a loop; a third copy still being written is not yet one.
        assert_eq!(repeated_sentence(&s.repeat(2)), None);
        assert_eq!(
            repeated_sentence(&format!("{}The FSC delivers fuel", s.repeat(2))),
            None
        );
        assert_eq!(
            repeated_sentence(&s.repeat(3)).as_deref(),
            Some("The FSC delivers fuel to the combat trains [1.2].")
        );
        // Citations, list markers, case and spacing do not make a repeat new.
        let listed = "- The FSC delivers fuel to the combat trains [1.2].\n\
                      - the FSC delivers  fuel to the combat trains [2.1][1.2].\n\
                      - The FSC delivers fuel to the combat trains [3.1].\n";
        assert!(repeated_sentence(listed).is_some());
        // Different sentences, or short ones (`없음.` under each sub-heading), are not.
        let varied = "The FSC delivers fuel [1.2]. The FSC delivers water [1.3]. \
                      The FSC delivers ammunition [1.4]. ";
        assert_eq!(repeated_sentence(varied), None);
        assert_eq!(repeated_sentence("가. 없음.\n나. 없음.\n다. 없음.\n"), None);
        // Korean, dense: a five-syllable loop counts.
        assert!(repeated_sentence(&"라는 출처는 [3.9]. ".repeat(3)).is_some());
    }

    #[test]
    fn choices_are_read_from_the_answer_and_the_first_token_probabilities() {
        let choices = ["SUPPORTS", "PARTLY", "NO"];
        assert_eq!(choice_of("Supports.", &choices), Some(0));
        assert_eq!(choice_of("PART", &choices), Some(1));
        assert_eq!(choice_of("no, because", &choices), Some(2));
        assert_eq!(choice_of("<|im_start|>", &choices), None);
        assert_eq!(choice_of("", &choices), None);
        let top = vec![
            ("NO".to_string(), -0.3),
            ("PART".to_string(), -1.6),
            ("YES".to_string(), -3.6),
            ("Part".to_string(), -4.2),
            ("SUP".to_string(), -5.0),
        ];
        let p = choice_probabilities(&top, &choices).expect("probabilities");
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(p[2] > p[1] && p[1] > p[0], "{p:?}");
        // `YES` begins no choice and is left out; `Part` counts for PARTLY.
        let partly = (-1.6f64).exp() + (-4.2f64).exp();
        let total = partly + (-0.3f64).exp() + (-5.0f64).exp();
        assert!((p[1] as f64 - partly / total).abs() < 1e-5);
        assert_eq!(
            choice_probabilities(&[("YES".into(), -0.1)], &choices),
            None
        );
    }

    #[test]
    fn token_figures_come_from_usage_or_llama_timings() {
        let llama = json!({"timings": {"predicted_n": 120, "predicted_per_second": 14.5}});
        assert_eq!(
            token_figures(&llama, Some(7), Some(900), 9_000),
            (Some(120), Some(14.5))
        );
        // OpenAI usage only: the rate is tokens over the time after the first token.
        let openai = json!({"usage": {"completion_tokens": 100}});
        assert_eq!(
            token_figures(&openai, Some(7), Some(1_000), 11_000),
            (Some(100), Some(10.0))
        );
        // No figures from the server (a stream stopped early): the events counted.
        assert_eq!(
            token_figures(&Value::Null, Some(50), Some(1_000), 6_000),
            (Some(50), Some(10.0))
        );
        assert_eq!(token_figures(&json!({}), None, Some(1), 2), (None, None));
    }
}
