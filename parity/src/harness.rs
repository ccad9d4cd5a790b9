//! Running a scenario on every adapter and comparing the transcripts.

use crate::raw::RawPeer;
use crate::{accept_all, Adapter, Config, Obs, Role, Socket, LIMIT};
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Every adapter, tokio first: its transcript is the reference the others
/// are compared with.
pub fn adapters() -> [&'static dyn Adapter; 4] {
    [
        &crate::Tokio,
        &crate::AsyncStd,
        &crate::Smol,
        &crate::Blocking,
    ]
}

/// Time allowed for one run of a scenario on one adapter.
pub const RUN_LIMIT: Duration = Duration::from_secs(45);

/// The text of a panic payload.
fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

/// Runs `scenario` on every adapter, in parallel (one thread each), and
/// returns each adapter's transcript, or the panic or time-out that ended
/// its run.
pub fn run_each<F>(scenario: F) -> Vec<(&'static str, Result<Vec<Obs>, String>)>
where
    F: Fn(&'static dyn Adapter) -> Vec<Obs> + Send + Sync + 'static,
{
    let scenario = Arc::new(scenario);
    let (done_tx, done_rx) = mpsc::channel();
    let all = adapters();
    for (i, a) in all.into_iter().enumerate() {
        let (f, done) = (scenario.clone(), done_tx.clone());
        std::thread::Builder::new()
            .name(format!("scenario-{}", a.name()))
            .spawn(move || {
                let res = std::panic::catch_unwind(AssertUnwindSafe(|| f(a)));
                let _ = done.send((i, res.map_err(panic_text)));
            })
            .expect("spawn scenario thread");
    }
    drop(done_tx);
    let mut results: Vec<Option<Result<Vec<Obs>, String>>> = all.iter().map(|_| None).collect();
    let deadline = Instant::now() + RUN_LIMIT;
    while results.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left) {
            Ok((i, res)) => results[i] = Some(res),
            Err(_) => break,
        }
    }
    all.iter()
        .zip(results)
        .map(|(a, r)| {
            let r = r.unwrap_or_else(|| Err(format!("did not finish within {RUN_LIMIT:?}")));
            (a.name(), r)
        })
        .collect()
}

/// Describes how `got` differs from `want`.
fn diff(got: &[Obs], want: &[Obs]) -> String {
    let mut s = String::new();
    let n = got.len().max(want.len());
    for i in 0..n {
        let (g, w) = (got.get(i), want.get(i));
        if g != w {
            let _ = writeln!(s, "      first difference at #{i}:");
            let _ = writeln!(s, "        got      {g:?}");
            let _ = writeln!(s, "        expected {w:?}");
            break;
        }
    }
    let _ = writeln!(s, "      whole transcript:");
    for (i, o) in got.iter().enumerate() {
        let _ = writeln!(s, "        #{i} {o:?}");
    }
    s
}

/// Runs `scenario` on every adapter and asserts that each transcript equals
/// `expected` and tokio's. On failure, reports every adapter's outcome.
pub fn check<F>(name: &str, expected: Vec<Obs>, scenario: F)
where
    F: Fn(&'static dyn Adapter) -> Vec<Obs> + Send + Sync + 'static,
{
    let t0 = Instant::now();
    let results = run_each(scenario);
    let reference = match &results[0].1 {
        Ok(t) => Some(t.clone()),
        Err(_) => None,
    };
    let mut report = String::new();
    let mut failed = false;
    for (adapter, res) in &results {
        match res {
            Err(e) => {
                failed = true;
                let _ = writeln!(report, "  {adapter:<10} FAILED: {e}");
            }
            Ok(t) => {
                let same_as_expected = *t == expected;
                let same_as_tokio = reference.as_ref().map_or(true, |r| r == t);
                if same_as_expected && same_as_tokio {
                    let _ = writeln!(report, "  {adapter:<10} ok ({} observations)", t.len());
                } else {
                    failed = true;
                    if !same_as_expected {
                        let _ = writeln!(report, "  {adapter:<10} DIFFERS from the expected:");
                        report.push_str(&diff(t, &expected));
                    }
                    if !same_as_tokio {
                        let _ = writeln!(report, "  {adapter:<10} DIFFERS from tokio:");
                        report.push_str(&diff(t, reference.as_deref().unwrap_or(&[])));
                    }
                }
            }
        }
    }
    let _ = writeln!(report, "  ({:.2?})", t0.elapsed());
    if failed {
        panic!("scenario `{name}`:\n{report}");
    }
    println!("scenario `{name}`:\n{report}");
}

/// [`check`] once for each role of the adapter: `expected(role)` and
/// `scenario(adapter, role)`.
pub fn check_roles<E, F>(name: &str, expected: E, scenario: F)
where
    E: Fn(Role) -> Vec<Obs>,
    F: Fn(&'static dyn Adapter, Role) -> Vec<Obs> + Send + Sync + Clone + 'static,
{
    for role in [Role::Client, Role::Server] {
        let scenario = scenario.clone();
        check(
            &format!("{name} (adapter as {role:?})"),
            expected(role),
            move |a| scenario(a, role),
        );
    }
}

/// Connects `adapter`, in `role`, to a [`RawPeer`] with an accept-all
/// handshake. `raw` runs on a thread of its own with the raw peer while
/// `local` runs with the adapter's socket; returns `local`'s observations
/// followed by `raw`'s.
pub fn with_raw_peer<R, L>(
    adapter: &dyn Adapter,
    role: Role,
    config: Config,
    raw: R,
    local: L,
) -> Vec<Obs>
where
    R: FnOnce(&mut RawPeer) -> Vec<Obs> + Send + 'static,
    L: FnOnce(&mut Socket) -> Vec<Obs>,
{
    let (mut socket, peer) = match role {
        Role::Client => {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = l.local_addr().expect("local address");
            let peer = spawn_helper("raw-server", move || {
                let (mut p, _) = RawPeer::accept(&l);
                raw(&mut p)
            });
            let (s, _) = adapter
                .connect_to(addr, config)
                .unwrap_or_else(|e| panic!("{}: connect: {e}", adapter.name()));
            (s, peer)
        }
        Role::Server => {
            let l = adapter.listen(config, accept_all());
            let addr = l.addr();
            let peer = spawn_helper("raw-client", move || {
                let mut p = RawPeer::connect(addr, "");
                raw(&mut p)
            });
            let s = l
                .accept()
                .unwrap_or_else(|e| panic!("{}: accept: {e}", adapter.name()));
            (s, peer)
        }
    };
    let mut out = local(&mut socket);
    out.extend(peer.join());
    out
}

/// A helper thread whose end can be waited for with a time limit.
#[derive(Debug)]
pub struct Helper<T> {
    what: String,
    handle: JoinHandle<T>,
    done: mpsc::Receiver<()>,
}

/// Runs `f` on a helper thread.
pub fn spawn_helper<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Helper<T> {
    let (tx, done) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(what.to_string())
        .spawn(move || {
            let t = f();
            let _ = tx.send(());
            t
        })
        .expect("spawn helper thread");
    Helper {
        what: what.to_string(),
        handle,
        done,
    }
}

impl<T> Helper<T> {
    /// Waits at most [`LIMIT`] for the thread's result; re-raises its
    /// panic.
    pub fn join(self) -> T {
        if let Err(mpsc::RecvTimeoutError::Timeout) = self.done.recv_timeout(LIMIT) {
            panic!("{} did not finish within {LIMIT:?}", self.what);
        }
        let what = self.what;
        self.handle
            .join()
            .unwrap_or_else(|p| panic!("{what} panicked: {}", panic_text(p)))
    }
}

/// Starts a one-connection echo server on `adapter`: it sends back every
/// data message and records everything else `recv` yields, then
/// `close_info`.
pub fn echo_server(adapter: &dyn Adapter, config: Config) -> (SocketAddr, Helper<Vec<Obs>>) {
    let l = adapter.listen(config, accept_all());
    let addr = l.addr();
    let h = spawn_helper("echo-server", move || {
        let mut s = match l.accept() {
            Ok(s) => s,
            Err(e) => return vec![Obs::Accepted(Err(e))],
        };
        echo(&mut s)
    });
    (addr, h)
}

/// Echoes data messages with `send` until `recv` ends; records the rest.
pub fn echo(s: &mut Socket) -> Vec<Obs> {
    let mut out = Vec::new();
    loop {
        match s.recv() {
            Some(Ok(m)) if m.is_data() => {
                if let Err(e) = s.send(m) {
                    out.push(Obs::Sent(Err(e)));
                }
            }
            None => {
                out.push(Obs::End);
                out.push(Obs::Info(s.close_info()));
                return out;
            }
            other => out.push(Obs::recv(other)),
        }
    }
}
