//! A model endpoint (or a proxy in front of one) answering hostile bytes: an answer past
//! 16 MiB, with or without a length, bytes that are not UTF-8, 10,000 levels of nesting. Each
//! is a bad response naming the endpoint, read no further than the cap.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::json;
use squad_adapters::llm::{LlmClient, MAX_ANSWER_BYTES};
use squad_config::{LlmProfile, LlmProvider};
use squad_protocols::llm::{ChatMessage, ChatRequest};

use super::{MIB_KIB, in_child, measure_here, measured_in_child, runtime};

/// How the fake endpoint answers one request.
#[derive(Clone)]
enum Reply {
    /// A body with its Content-Length.
    Body(Vec<u8>),
    /// `total` bytes of `"x"` inside a chat completion's content, chunked, with no length.
    Endless(usize),
}

/// A chat completion whose content is `content`.
fn completion(content: &str) -> Vec<u8> {
    json!({"id": "c1", "object": "chat.completion", "created": 1, "model": "fake",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
    .to_string()
    .into_bytes()
}

/// An OpenAI-compatible endpoint that answers the requests with `replies`, in order.
fn endpoint(replies: Vec<Reply>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let replies = Arc::new(Mutex::new(replies.into_iter()));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut line, mut length) = (String::new(), 0usize);
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let Some(reply) = replies.lock().unwrap().next() else {
                continue;
            };
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n";
            let _ = match reply {
                Reply::Body(b) => stream
                    .write_all(format!("{head}Content-Length: {}\r\n\r\n", b.len()).as_bytes())
                    .and_then(|()| stream.write_all(&b)),
                Reply::Endless(total) => {
                    let chunk = vec![b'x'; 1 << 20];
                    let frame =
                        |b: &[u8]| [format!("{:x}\r\n", b.len()).as_bytes(), b, b"\r\n"].concat();
                    let mut w = stream
                        .write_all(format!("{head}Transfer-Encoding: chunked\r\n\r\n").as_bytes())
                        .and_then(|()| stream.write_all(&frame(br#"{"id":"c1","choices":[{"index":0,"message":{"role":"assistant","content":""#)));
                    for _ in 0..total >> 20 {
                        w = w.and_then(|()| stream.write_all(&frame(&chunk)));
                    }
                    w.and_then(|()| stream.write_all(&frame(br#""}}]}"#)))
                        .and_then(|()| stream.write_all(b"0\r\n\r\n"))
                }
            };
        }
    });
    format!("http://127.0.0.1:{port}/v1")
}

fn ask(base_url: String) -> Result<String, String> {
    let profile = LlmProfile {
        provider: LlmProvider::OpenaiCompatible,
        base_url: Some(base_url),
        model: "fake".into(),
        api_key_env: None,
        timeout_seconds: 60,
        max_retries: 0,
        ..LlmProfile::default()
    };
    let client = LlmClient::with_env(&profile, |_| None).unwrap();
    let request = ChatRequest {
        messages: vec![ChatMessage::user("Why is api-0 restarting?")],
        ..ChatRequest::default()
    };
    runtime()
        .block_on(client.chat(request))
        .map(|r| r.content.unwrap_or_default())
        .map_err(|e| e.to_string())
}

#[test]
fn a_model_answer_past_16_mib_is_a_bad_response_read_no_further() {
    if in_child() {
        let sized = endpoint(vec![Reply::Body(completion(&"x".repeat(20 << 20)))]);
        let endless = endpoint(vec![Reply::Endless(100 << 20)]);
        measure_here(|| {
            for url in [sized, endless] {
                let e = ask(url).unwrap_err();
                assert!(
                    e.starts_with("bad response from http://127.0.0.1:")
                        && e.contains(&format!("more than the {MAX_ANSWER_BYTES} squad reads")),
                    "{e}"
                );
            }
        });
        return;
    }
    let growth =
        measured_in_child("model::a_model_answer_past_16_mib_is_a_bad_response_read_no_further");
    // The 20 MiB answer is refused by its length; the endless one is read up to 16 MiB.
    assert!(growth < 64 * MIB_KIB, "{growth} KiB");
}

#[test]
fn a_model_answer_that_is_not_utf8_or_too_deep_is_a_bad_response() {
    let fine = completion("api-0 runs out of memory");
    let at = fine.windows(3).position(|w| w == b"api").unwrap();
    let not_utf8 = [&fine[..at], b"\xff\xfe", &fine[at..]].concat();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes();
    let url = endpoint(vec![
        Reply::Body(fine.clone()),
        Reply::Body(not_utf8),
        Reply::Body(deep),
    ]);
    assert_eq!(ask(url.clone()).unwrap(), "api-0 runs out of memory");
    let e = ask(url.clone()).unwrap_err();
    assert!(
        e.starts_with("bad response from") && e.contains("not a chat completion"),
        "{e}"
    );
    // Refused at the first level whose type is wrong, long before any recursion limit.
    let e = ask(url).unwrap_err();
    assert!(e.starts_with("bad response from") && e.len() < 1_000, "{e}");
}
