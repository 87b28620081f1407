//! The cassette server end to end: recording against a fake upstream, replaying from a fresh
//! server, misses and their diffs, keys never stored, concurrency.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

use axum::extract::State as AxumState;

/// A fake OpenAI-compatible upstream: answers "echo: <last message>" and keeps the
/// `Authorization` header of every request.
#[derive(Default)]
struct Fake {
    authorizations: Mutex<Vec<Option<String>>>,
}

async fn fake_upstream() -> (String, Arc<Fake>, JoinHandle<()>) {
    async fn complete(
        AxumState(fake): AxumState<Arc<Fake>>,
        headers: HeaderMap,
        axum::Json(request): axum::Json<Value>,
    ) -> Response {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap().to_owned());
        fake.authorizations.lock().unwrap().push(authorization);
        let last = request["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_owned();
        if last == "fail" {
            return error(StatusCode::TOO_MANY_REQUESTS, "rate_limit", "slow down");
        }
        axum::Json(json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": request["model"],
            "choices": [{
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": format!("echo: {last}")},
            }],
        }))
        .into_response()
    }
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(complete))
        .with_state(fake.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, fake, task)
}

fn request(prompt: &str) -> Value {
    json!({
        "model": "gpt-test",
        "temperature": 0,
        "messages": [
            {"role": "system", "content": "You are Picard.\nYou lead the crew.\nBe brief."},
            {"role": "user", "content": prompt},
        ],
    })
}

async fn post_chat(
    server: &CassetteServer,
    body: &Value,
    authorization: Option<&str>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/chat/completions", server.url()))
        .json(body);
    if let Some(a) = authorization {
        req = req.header(header::AUTHORIZATION, a);
    }
    let reply = req.send().await.unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap())
}

fn cassette_files(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn record(upstream: &str) -> Mode {
    Mode::Record {
        upstream: upstream.to_owned(),
        api_key: None,
    }
}

#[tokio::test]
async fn cassette_recorded_exchange_replays_from_a_fresh_server() {
    let (upstream, fake, _task) = fake_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let body = request("Why is checkout crash looping?");

    let recorder = CassetteServer::start(dir.path().to_owned(), record(&upstream))
        .await
        .unwrap();
    let (status, recorded) = post_chat(&recorder, &body, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        recorded["choices"][0]["message"]["content"],
        "echo: Why is checkout crash looping?"
    );
    assert_eq!(
        recorder.stats(),
        CassetteStats {
            recorded: 1,
            ..Default::default()
        }
    );
    drop(recorder);

    let files = cassette_files(dir.path());
    assert_eq!(files.len(), 1);
    let (name, text) = &files[0];
    assert!(
        name.ends_with("-gpt-test-why-is-checkout-crash-looping.json"),
        "{name}"
    );
    assert_eq!(name.split('-').next().unwrap().len(), 12, "{name}");
    let exchange: Exchange = serde_json::from_str(text).unwrap();
    assert_eq!(exchange.request, body);
    assert_eq!(exchange.response, recorded);
    assert_eq!(exchange.status, 200);

    let replayer = CassetteServer::start(dir.path().to_owned(), Mode::Replay)
        .await
        .unwrap();
    let (status, replayed) = post_chat(&replayer, &body, None).await;
    assert_eq!(status, 200);
    assert_eq!(replayed, recorded);
    assert_eq!(
        replayer.stats(),
        CassetteStats {
            hits: 1,
            ..Default::default()
        }
    );
    assert_eq!(replayer.requests(), vec![body]);
    assert!(replayer.misses().is_empty());
    assert_eq!(
        fake.authorizations.lock().unwrap().len(),
        1,
        "replay went upstream"
    );
}

#[test]
fn issue_numbers_are_all_a_request_may_differ_by() {
    let a = request("Data filed follow-up issue #3; PR #2 is open; 512Mi limit");
    let b = request("Data filed follow-up issue #4; PR #2 is open; 512Mi limit");
    let c = request("Data filed follow-up issue #3; PR #2 is open; 513Mi limit");
    assert_eq!(match_key(&a), match_key(&b));
    assert_ne!(match_key(&a), match_key(&c));
}

#[tokio::test]
async fn cassette_changed_prompt_is_a_miss_with_a_line_diff() {
    let (upstream, _fake, _task) = fake_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let recorder = CassetteServer::start(dir.path().to_owned(), record(&upstream))
        .await
        .unwrap();
    post_chat(&recorder, &request("Why is checkout crash looping?"), None).await;
    post_chat(
        &recorder,
        &request("Summarise the incident for the PR"),
        None,
    )
    .await;
    drop(recorder);

    let replayer = CassetteServer::start(dir.path().to_owned(), Mode::Replay)
        .await
        .unwrap();
    let changed = request("Why is checkout crash-looping now?");
    let (status, body) = post_chat(&replayer, &changed, None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "cassette_miss");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("- messages[1].content: \"Why is checkout crash looping?\""),
        "{message}"
    );
    assert!(
        message.contains("+ messages[1].content: \"Why is checkout crash-looping now?\""),
        "{message}"
    );
    assert!(message.contains("2 lines differ"), "{message}");

    let misses = replayer.misses();
    assert_eq!(misses.len(), 1);
    assert_eq!(misses[0].request, changed);
    assert_eq!(misses[0].message, message);
    let nearest = misses[0].nearest.as_deref().unwrap();
    assert!(
        nearest.contains("why-is-checkout-crash-looping"),
        "{nearest}"
    );
    assert!(message.contains(nearest), "{message}");
    assert_eq!(
        replayer.stats(),
        CassetteStats {
            misses: 1,
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn cassette_multi_line_prompt_change_diffs_by_line() {
    let (upstream, _fake, _task) = fake_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let recorder = CassetteServer::start(dir.path().to_owned(), record(&upstream))
        .await
        .unwrap();
    post_chat(&recorder, &request("hello"), None).await;
    drop(recorder);

    let replayer = CassetteServer::start(dir.path().to_owned(), Mode::Replay)
        .await
        .unwrap();
    let mut changed = request("hello");
    changed["messages"][0]["content"] = json!("You are Picard.\nYou command the crew.\nBe brief.");
    let (status, _) = post_chat(&replayer, &changed, None).await;
    assert_eq!(status, 400);
    let diff = &replayer.misses()[0].diff;
    assert_eq!(
        diff,
        "  messages[0].content: |\n      You are Picard.\n-     You lead the crew.\n\
         +     You command the crew.\n      Be brief.\n  messages[0].role: \"system\"\n  ...\n"
    );
}

#[tokio::test]
async fn cassette_ignored_fields_do_not_cause_misses() {
    let (upstream, _fake, _task) = fake_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let mut first = request("hello");
    first["user"] = json!("run-1");
    let recorder = CassetteServer::start(dir.path().to_owned(), record(&upstream))
        .await
        .unwrap();
    post_chat(&recorder, &first, None).await;
    drop(recorder);

    let replayer = CassetteServer::start(dir.path().to_owned(), Mode::Replay)
        .await
        .unwrap();
    let mut second = request("hello");
    second["user"] = json!("run-2");
    second["stream_options"] = json!({"include_usage": true});
    second["metadata"] = json!({"incident": "INC-7"});
    second["store"] = json!(false);
    let (status, _) = post_chat(&replayer, &second, None).await;
    assert_eq!(status, 200, "{:?}", replayer.misses());
    // Key order and whitespace do not matter either.
    let reordered = r#"{ "temperature": 0, "messages": [{"content": "You are Picard.\nYou lead the crew.\nBe brief.", "role": "system"}, {"role": "user", "content": "hello"}], "model": "gpt-test" }"#;
    let reply = reqwest::Client::new()
        .post(format!("{}/chat/completions", replayer.url()))
        .header(header::CONTENT_TYPE, "application/json")
        .body(reordered)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    assert_eq!(replayer.stats().hits, 2);
    // A field that is not ignored does.
    let mut hotter = request("hello");
    hotter["temperature"] = json!(0.7);
    let (status, _) = post_chat(&replayer, &hotter, None).await;
    assert_eq!(status, 400);
    assert!(
        replayer.misses()[0]
            .diff
            .contains("- temperature: 0\n+ temperature: 0.7\n")
    );
}

#[tokio::test]
async fn cassette_never_stores_the_api_key() {
    let (upstream, fake, _task) = fake_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    // A configured key replaces the client's.
    let server = CassetteServer::start(
        dir.path().to_owned(),
        Mode::Record {
            upstream: upstream.clone(),
            api_key: Some("sk-configured-secret".to_owned()),
        },
    )
    .await
    .unwrap();
    assert!(
        !format!(
            "{:?}",
            Mode::Record {
                upstream: upstream.clone(),
                api_key: Some("sk-configured-secret".to_owned()),
            }
        )
        .contains("sk-configured-secret")
    );
    post_chat(&server, &request("one"), Some("Bearer sk-client-secret")).await;
    drop(server);
    // Without one, the client's goes upstream.
    let server = CassetteServer::start(dir.path().to_owned(), record(&upstream))
        .await
        .unwrap();
    post_chat(&server, &request("two"), Some("Bearer sk-client-secret")).await;
    drop(server);

    assert_eq!(
        *fake.authorizations.lock().unwrap(),
        vec![
            Some("Bearer sk-configured-secret".to_owned()),
            Some("Bearer sk-client-secret".to_owned()),
        ]
    );
    let files = cassette_files(dir.path());
    assert_eq!(files.len(), 2);
    for (name, text) in files {
        assert!(!text.contains("sk-"), "{name} holds a key:\n{text}");
        assert!(!text.to_lowercase().contains("authorization"), "{name}");
    }
}

#[tokio::test]
async fn cassette_lists_the_models_it_holds() {
    let (upstream, _fake, _task) = fake_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let server = CassetteServer::start(dir.path().to_owned(), record(&upstream))
        .await
        .unwrap();
    let mut other = request("b");
    other["model"] = json!("gpt-other");
    for body in [request("a"), other, request("c")] {
        post_chat(&server, &body, None).await;
    }
    let list: Value = reqwest::get(format!("{}/models", server.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(list["object"], "list");
    assert_eq!(ids, ["gpt-other", "gpt-test"]);
}

#[tokio::test]
async fn cassette_replay_or_record_records_misses_only() {
    let (upstream, fake, _task) = fake_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let mode = Mode::ReplayOrRecord {
        upstream,
        api_key: None,
    };
    let server = CassetteServer::start(dir.path().to_owned(), mode.clone())
        .await
        .unwrap();
    post_chat(&server, &request("a"), None).await;
    post_chat(&server, &request("a"), None).await;
    drop(server);
    let server = CassetteServer::start(dir.path().to_owned(), mode)
        .await
        .unwrap();
    post_chat(&server, &request("a"), None).await;
    post_chat(&server, &request("b"), None).await;
    assert_eq!(
        server.stats(),
        CassetteStats {
            hits: 1,
            recorded: 1,
            ..Default::default()
        }
    );
    assert_eq!(fake.authorizations.lock().unwrap().len(), 2);
    assert_eq!(cassette_files(dir.path()).len(), 2);
}

#[tokio::test]
async fn cassette_does_not_record_upstream_errors() {
    let (upstream, _fake, _task) = fake_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let server = CassetteServer::start(dir.path().to_owned(), record(&upstream))
        .await
        .unwrap();
    let (status, body) = post_chat(&server, &request("fail"), None).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["type"], "rate_limit");
    assert_eq!(server.stats().upstream_errors, 1);
    assert!(cassette_files(dir.path()).is_empty());
}

#[tokio::test]
async fn cassette_replay_needs_an_existing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-cassette");
    let err = CassetteServer::start(missing, Mode::Replay)
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains("no-such-cassette"), "{err}");
}

#[tokio::test]
async fn cassette_empty_replay_miss_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let server = CassetteServer::start(dir.path().to_owned(), Mode::Replay)
        .await
        .unwrap();
    let (status, body) = post_chat(&server, &request("a"), None).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("holds no exchanges")
    );
    assert_eq!(server.misses()[0].nearest, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cassette_serves_concurrent_requests() {
    let (upstream, fake, _task) = fake_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let prompts: Vec<String> = (0..8).map(|i| format!("question {i}")).collect();
    let mode = Mode::ReplayOrRecord {
        upstream,
        api_key: None,
    };
    let server = Arc::new(
        CassetteServer::start(dir.path().to_owned(), mode)
            .await
            .unwrap(),
    );
    for round in 0..2 {
        // All in flight before any is awaited.
        let handles: Vec<_> = prompts
            .iter()
            .map(|p| {
                let server = server.clone();
                let body = request(p);
                tokio::spawn(async move { post_chat(&server, &body, None).await })
            })
            .collect();
        for (handle, prompt) in handles.into_iter().zip(&prompts) {
            let (status, body) = handle.await.unwrap();
            assert_eq!(status, 200, "round {round}");
            assert_eq!(
                body["choices"][0]["message"]["content"],
                format!("echo: {prompt}")
            );
        }
    }
    assert_eq!(
        server.stats(),
        CassetteStats {
            hits: 8,
            recorded: 8,
            ..Default::default()
        }
    );
    assert_eq!(server.requests().len(), 16);
    assert_eq!(fake.authorizations.lock().unwrap().len(), 8);
    let files = cassette_files(dir.path());
    assert_eq!(
        files.len(),
        8,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
}
