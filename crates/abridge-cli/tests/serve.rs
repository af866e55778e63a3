//! `abridge serve` as a process: SIGTERM ends it within the configured grace even while a long
//! compression runs (issue #21: it used to need SIGKILL).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
#[cfg(unix)]
fn sigterm_exits_within_the_grace_while_a_compression_runs() {
    let dir = std::env::temp_dir().join(format!("abridge-serve-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("abridge.toml");
    std::fs::write(
        &config,
        "[limits]\nshutdown_grace_seconds = 1\nrequest_timeout_seconds = 600\nworkers = 1\n",
    )
    .unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_abridge"))
        .args(["serve", "--port", "0", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(server.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the server exited"
        );
        if let Some(rest) = line.split("serving on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };

    // A compression of some 40,000 tokens: far longer than the grace.
    let body =
        serde_json::json!({"context": "The quay was rebuilt after the storm. ".repeat(5000)})
            .to_string();
    let mut request = TcpStream::connect(&addr).unwrap();
    write!(
        request,
        "POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let busy = Instant::now();
    while !get(&addr, "/healthz").contains("\"busy\":1") {
        assert!(
            busy.elapsed() < Duration::from_secs(30),
            "no compression started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let terminated = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    loop {
        if let Some(status) = server.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        if terminated.elapsed() > Duration::from_secs(8) {
            server.kill().unwrap();
            panic!("still running 8 s after SIGTERM with a grace of 1 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Grace (1 s) + the runtime's bounded tail (2 s) + process start-up noise.
    assert!(
        terminated.elapsed() < Duration::from_secs(5),
        "{:?}",
        terminated.elapsed()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
