//! Throwaway PostgreSQL clusters for tests: one cluster per test binary
//! run (shared by its test processes: nextest runs each test in a process
//! of its own), a fresh database per test.
//!
//! The cluster lives in a temporary folder with its unix socket, on a free
//! port, with `fsync=off`; as root, `initdb` and `postgres` run as the
//! `postgres` user. A watchdog stops it and removes the folder once the
//! process that ran the tests (nextest or cargo) is gone.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN_DIRS: &[&str] = &["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"];

fn bin(name: &str) -> PathBuf {
    for d in BIN_DIRS {
        let p = Path::new(d).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("PostgreSQL's {name} was not found in {BIN_DIRS:?}: install Debian's `postgresql` (./test does)");
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs a PostgreSQL program, as the `postgres` user when root.
fn pg_command(program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin(program));
        c
    } else {
        Command::new(bin(program))
    }
}

fn run(mut c: Command, what: &str) {
    let out = c.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn give_to_postgres(path: &Path) {
    if is_root() {
        run(
            {
                let mut c = Command::new("chown");
                c.arg("-R").arg("postgres:postgres").arg(path);
                c
            },
            "chown",
        );
    }
}

/// The port of this test run's cluster, starting it if this is the first
/// test to ask.
pub fn cluster_port() -> u16 {
    let exe = std::env::current_exe().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let runner = std::os::unix::process::parent_id();
    let dir = std::env::temp_dir().join(format!("tickets-pg-{}-{runner}", exe.unwrap_or_default()));
    let lock = dir.with_extension("lock");
    let deadline = Instant::now() + Duration::from_secs(120);
    // mkdir is atomic: the test that makes the lock starts the cluster.
    while std::fs::create_dir(&lock).is_err() {
        assert!(Instant::now() < deadline, "another test holds {} for over 2 minutes", lock.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    let ready = dir.join("port");
    let port = match std::fs::read_to_string(&ready).ok().and_then(|s| s.trim().parse().ok()) {
        Some(p) => p,
        None => start(&dir, &ready, runner),
    };
    let _ = std::fs::remove_dir(&lock);
    port
}

fn start(dir: &Path, ready: &Path, runner: u32) -> u16 {
    let _ = std::fs::remove_dir_all(dir);
    let data = dir.join("data");
    let sock = dir.join("sock");
    for d in [&data, &sock] {
        std::fs::create_dir_all(d).expect("cluster folder");
    }
    give_to_postgres(dir);
    let mut initdb = pg_command("initdb");
    initdb.arg("-D").arg(&data).args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
    run(initdb, "initdb");
    let port = free_port();
    let mut ctl = pg_command("pg_ctl");
    ctl.arg("-D").arg(&data).arg("-l").arg(dir.join("log")).args(["-w", "-t", "60", "-o"]).arg(format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=300",
        sock.display()
    ));
    ctl.arg("start");
    run(ctl, "pg_ctl start");
    // The watchdog: stops the cluster and removes its folder once the
    // test runner is gone.
    let stop = format!(
        "while kill -0 {runner} 2>/dev/null; do sleep 1; done; {} {} -D '{}' stop -m immediate >/dev/null 2>&1; rm -rf '{}'",
        if is_root() { "runuser -u postgres --" } else { "" },
        bin("pg_ctl").display(),
        data.display(),
        dir.display()
    );
    // (`setsid -f` forks it off in a session of its own and returns.)
    let status = Command::new("setsid")
        .args(["-f", "sh", "-c", &stop])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the cluster's watchdog");
    assert!(status.success(), "the cluster's watchdog did not start");
    std::fs::write(ready, port.to_string()).expect("cluster port file");
    port
}

/// A fresh, empty database in this run's cluster: its URL.
pub fn fresh_database() -> String {
    let port = cluster_port();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut c = Command::new(bin("createdb"));
    c.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", &name]);
    run(c, "createdb");
    format!("postgres://postgres@127.0.0.1:{port}/{name}")
}
