//! The web page in a real browser: headless Chromium (Debian's `chromium`) loads `/` with a
//! prompt in the link's fragment, the page compresses it through `/v1/compress` with the real
//! model, and the rendered DOM must show the result: statistics and dropped text struck through.
//!
//! Chromium is required (CI installs it: `apt-get install -y chromium`); without it the test
//! fails with that line, unless `ABRIDGE_SKIP_BROWSER_TEST=1` says to skip it.
//! `ABRIDGE_SCREENSHOT=path.png` also keeps the screenshot (docs/web-ui.png was made so).
//! `rewrite` is shown with a stand-in generator that invents a fact: the page puts the extract
//! beside the rewrite and highlights what the guard repaired.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use abridge_core::{BoxError, Generation, Generator};
use abridge_server::{AppState, Config};
use common::{embedder, fast, model, TestServer, SAMPLE};

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser", "google-chrome"].map(|n| dir.join(n)))
        .find(|candidate| candidate.is_file())
}

/// Runs headless Chromium on `url` with `extra` flags; returns its standard output.
fn run_chromium(chromium: &Path, profile: &Path, url: &str, extra: &[&str]) -> String {
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-extensions",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1200,1400",
            // Virtual time runs only while the page is idle: it waits out the compression
            // request (network activity pauses it), then the budget lets rendering finish.
            "--virtual-time-budget=120000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
        out
    });
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed: {status}");
            break;
        }
        if Instant::now() > deadline {
            // Our own child, by its id.
            let _ = child.kill();
            panic!("chromium did not finish in 240 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

/// `s` as one `application/x-www-form-urlencoded` value (what `URLSearchParams` reads).
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Chromium, or `None` when the test may be skipped without it (it panics otherwise).
fn chromium_or_skip() -> Option<PathBuf> {
    let chromium = chromium();
    if chromium.is_none() {
        if std::env::var_os("ABRIDGE_SKIP_BROWSER_TEST").is_some() {
            eprintln!("skipped: no chromium and ABRIDGE_SKIP_BROWSER_TEST is set");
            return None;
        }
        panic!(
            "chromium is needed for the web page test: apt-get install -y chromium \
             (or set ABRIDGE_SKIP_BROWSER_TEST=1 to skip it)"
        );
    }
    chromium
}

/// The page at `server`'s `/` with `fragment` (a link's example, ending in `&run`), as rendered
/// once it is done, and the browser profile folder it used (`tag` names it).
async fn finished_page(
    chromium: &Path,
    server: &TestServer,
    fragment: &str,
    tag: &str,
) -> (String, String, PathBuf) {
    let url = format!("{}#{fragment}", server.url("/"));
    let profile =
        std::env::temp_dir().join(format!("abridge-chromium-{tag}-{}", std::process::id()));
    let dom = tokio::task::spawn_blocking({
        let (chromium, profile, url) = (chromium.to_path_buf(), profile.clone(), url.clone());
        move || run_chromium(&chromium, &profile, &url, &["--dump-dom"])
    })
    .await
    .unwrap();
    assert!(
        dom.contains("data-state=\"done\""),
        "the page did not finish:\n{dom}"
    );
    (dom, url, profile)
}

/// The inner HTML of the first element of `dom` with `id`, up to its closing `tag`.
fn inner<'d>(dom: &'d str, id: &str, tag: &str) -> &'d str {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in\n{dom}"));
    let start = start + dom[start..].find('>').unwrap() + 1;
    let end = start + dom[start..].find(&format!("</{tag}>")).unwrap();
    &dom[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_compresses_a_prompt_and_strikes_through_what_was_dropped() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let server = TestServer::with_toml("").await;
    let fragment = format!(
        "text={}&question={}&method=llmlingua&rate=0.4&run",
        form_encode(SAMPLE),
        form_encode("How many visitors came last year?")
    );
    let (dom, url, profile) = finished_page(&chromium, &server, &fragment, "llmlingua").await;
    let stats = &dom[dom.find("id=\"stats\"").expect("the statistics")..];
    let stats = &stats[..stats.find("id=\"marked\"").expect("the marked prompt")];
    assert!(stats.contains("cl100k_base tokens"), "{stats}");
    assert!(
        stats.contains("×") && stats.contains("compression ratio"),
        "{stats}"
    );
    let struck = dom.matches("<del>").count();
    assert!(struck > 10, "{struck} struck-through units:\n{dom}");
    // The question was kept: highlighted as protected, word by word.
    let protected: String = dom
        .split("<span class=\"protected\">")
        .skip(1)
        .map(|s| &s[..s.find("</span>").unwrap()])
        .collect::<String>()
        .split_whitespace()
        .collect();
    assert!(
        protected.contains("Howmanyvisitorscamelastyear?"),
        "{protected}"
    );
    // The compressed prompt is in the output box, about 40% of the original.
    let output = inner(&dom, "output", "textarea");
    assert!(output.len() < SAMPLE.len() * 6 / 10, "{output}");
    assert!(dom.contains("id=\"rewrite-view\" hidden"), "{dom}");

    let screenshot = std::env::var_os("ABRIDGE_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| profile.join("web-ui.png"));
    let argument = format!("--screenshot={}", screenshot.display());
    tokio::task::spawn_blocking({
        let (profile, url) = (profile.clone(), url.clone());
        move || run_chromium(&chromium, &profile, &url, &[&argument])
    })
    .await
    .unwrap();
    let png = std::fs::read(&screenshot).expect("chromium wrote the screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    let _ = std::fs::remove_dir_all(&profile);
}

/// Writes one sentence that invents a name beside a real date, and one the sample supports.
struct Inventor;

impl Generator for Inventor {
    fn generate(
        &self,
        _: &Generation,
        _: &mut dyn FnMut(usize) -> Result<(), BoxError>,
    ) -> Result<String, BoxError> {
        Ok("The railway arrived in 1871 under Zorblax. Tourism has replaced fishing.".into())
    }

    fn name(&self) -> &str {
        "inventor"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrite_is_shown_beside_its_extract_with_the_repairs_highlighted() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let state = AppState::new(Config::parse("").unwrap(), model())
        .unwrap()
        .with_embedder(embedder())
        .with_fast(fast())
        .with_generator(Arc::new(Inventor));
    let server = TestServer::start_state(state).await;
    let fragment = format!(
        "text={}&question={}&method=rewrite&rate=0.4&run",
        form_encode(SAMPLE),
        form_encode("When did the railway arrive?")
    );
    let (dom, _, profile) = finished_page(&chromium, &server, &fragment, "rewrite").await;
    assert!(!dom.contains("id=\"rewrite-view\" hidden"), "{dom}");
    let extract = inner(&dom, "extract-text", "p");
    assert!(
        extract.contains("1871") && extract.len() < SAMPLE.len(),
        "{extract}"
    );
    // The invented name is marked in what the rewriter wrote, and its sentence was replaced by
    // the extract's, shown as repaired in the rewrite.
    let generated = inner(&dom, "generated", "p");
    assert!(
        generated.contains("<mark class=\"unsupported\">Zorblax</mark>"),
        "{generated}"
    );
    let rewrite = inner(&dom, "rewrite-text", "p");
    assert!(
        rewrite.starts_with("<span class=\"repaired\">"),
        "{rewrite}"
    );
    assert!(!rewrite.contains("Zorblax"), "{rewrite}");
    assert!(
        rewrite.contains("Tourism has replaced fishing."),
        "{rewrite}"
    );
    // The budget the two short sentences left is filled from the extract.
    assert!(rewrite.contains("<span class=\"fill\">"), "{rewrite}");
    let repairs = inner(&dom, "repair-list", "ul");
    assert!(
        repairs.contains("“Zorblax” not in the prompt: the sentence was replaced by"),
        "{repairs}"
    );
    assert!(dom.contains("tokens: extract → rewrite + fill"), "{dom}");
    if let Some(screenshot) = std::env::var_os("ABRIDGE_REWRITE_SCREENSHOT") {
        let argument = format!("--screenshot={}", PathBuf::from(screenshot).display());
        let url = server.url("/") + "#" + &fragment;
        tokio::task::spawn_blocking({
            let profile = profile.clone();
            move || run_chromium(&chromium, &profile, &url, &[&argument])
        })
        .await
        .unwrap();
    }
    let _ = std::fs::remove_dir_all(&profile);
}
