//! Real services for the integration tests: a private PostgreSQL cluster per test binary and
//! Redis servers per test, started from the installed server binaries (scripts/test installs
//! them). A service that cannot start fails the test with its log; nothing is skipped.
//!
//! The cluster lives in a static, which is never dropped, so a watchdog shell stops it and
//! removes its folder once the test process is gone, even after a kill -9.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
#![allow(dead_code)]

use super::free_port;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Whether this process runs as root (PostgreSQL then has to run as `postgres`).
fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A command for a PostgreSQL server binary: as the `postgres` user when we are root
/// (the server refuses to run as root).
fn as_postgres(bin: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

/// The folder holding `initdb` and `pg_ctl`: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`, else wherever `initdb` is on the PATH.
fn pg_bindir() -> PathBuf {
    let has_server = |d: &Path| d.join("initdb").exists() && d.join("pg_ctl").exists();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server(&d) {
            return d;
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| has_server(d))
        .collect();
    versions.sort();
    if let Some((_, d)) = versions.pop() {
        return d;
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if let Ok(initdb) = std::fs::canonicalize(dir.join("initdb")) {
            if let Some(d) = initdb.parent().filter(|d| has_server(d)) {
                return d.to_path_buf();
            }
        }
    }
    panic!(
        "the PostgreSQL server binaries (initdb, pg_ctl) are not installed; \
         scripts/test installs them (apt-get install postgresql)"
    );
}

/// Panics with `what` and the command's output when `out` is a failure.
fn check(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

/// The server's settings: loopback only, its own socket folder, fsync on (durability is under
/// test), and TLS offered with a certificate from the cluster's own CA (`ca.pem`), so a test can
/// connect with `sslmode=require`; clients that do not ask for TLS are not made to use it.
fn server_options(port: u16, dir: &Path) -> String {
    format!(
        "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={d} \
         -c max_connections=200 -c fsync=on -c ssl=on -c ssl_cert_file={d}/server.pem \
         -c ssl_key_file={d}/server.key",
        d = dir.display()
    )
}

/// A CA (`ca.pem`) and a server certificate for 127.0.0.1 signed by it, in `dir`, readable by
/// the server (the key only by its owner, as PostgreSQL insists).
pub fn make_certificates(dir: &Path) {
    let script = "set -e; \
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
          -subj /CN=hotline-test-ca 2>/dev/null; \
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
          -subj /CN=127.0.0.1 2>/dev/null; \
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\n' > ext.cnf; \
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
          -out server.pem -days 2 -extfile ext.cnf 2>/dev/null; \
        chmod 600 server.key; chmod 644 ca.pem server.pem";
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("run openssl (scripts/test installs it)");
    check("make the cluster's certificates", &out);
    if is_root() {
        let out = Command::new("chown")
            .args(["postgres:postgres", "server.key", "server.pem"])
            .current_dir(dir)
            .output()
            .expect("run chown");
        check("chown the server's key", &out);
    }
}

/// A private PostgreSQL cluster on 127.0.0.1, trust auth, fsync on. One per test binary.
pub struct Postgres {
    /// The port it listens on.
    pub port: u16,
    /// Its folder (data directory, socket and server log).
    pub dir: PathBuf,
    bindir: PathBuf,
    /// Serialises CREATE DATABASE within this process.
    creating: Mutex<()>,
}

static POSTGRES: OnceLock<Postgres> = OnceLock::new();

/// The test binary's cluster, started on first use and shared by all its tests.
pub fn postgres() -> &'static Postgres {
    POSTGRES.get_or_init(Postgres::start)
}

impl Postgres {
    /// A cluster of the calling test's own, which it may stop and start as it likes (the
    /// shared one of [`postgres`] serves the other tests running meanwhile). Stopped and
    /// removed once this process exits, like the shared one.
    pub fn private() -> Postgres {
        Postgres::start()
    }

    fn start() -> Postgres {
        let bindir = pg_bindir();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("hotline-pg-{}-{nanos:09}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the cluster folder");
        // The watchdog first, so that even a start that fails half-way is cleaned up.
        Postgres::watchdog(&bindir, &dir);
        if is_root() {
            let out = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .output()
                .expect("run chown");
            check("chown postgres the cluster folder", &out);
        }
        let data = dir.join("data");
        // --no-sync makes only initdb itself faster; the server keeps fsync on.
        let out = as_postgres(&bindir.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run initdb");
        check("initdb", &out);

        let port = free_port();
        let log = dir.join("server.log");
        let ctl_out = dir.join("pg_ctl.out");
        let ctl_file = std::fs::File::create(&ctl_out).expect("pg_ctl output file");
        make_certificates(&dir);
        let options = server_options(port, &dir);
        // Output into a file, not a pipe: the server it starts must hold nothing of ours open.
        let status = as_postgres(&bindir.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(ctl_file.try_clone().expect("pg_ctl output")))
            .stderr(Stdio::from(ctl_file))
            .status()
            .expect("run pg_ctl");
        let server_log = || {
            format!(
                "{}\n--- server.log ---\n{}",
                std::fs::read_to_string(&ctl_out).unwrap_or_default(),
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        };
        assert!(
            status.success(),
            "pg_ctl start failed ({status}):\n{}",
            server_log()
        );
        let pg = Postgres {
            port,
            dir: dir.clone(),
            bindir,
            creating: Mutex::new(()),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(pg.client("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready && pg.try_psql("postgres", "select 1").as_deref() == Ok("1") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL on port {port} not ready after 30s:\n{}",
                server_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        pg
    }

    /// Stops the cluster and removes its folder once this process has exited, however it ends.
    /// Never waited for: it is meant to outlive this process.
    #[allow(clippy::zombie_processes)]
    fn watchdog(bindir: &Path, dir: &Path) {
        let stop = if is_root() {
            "runuser -u postgres -- \"$2/pg_ctl\""
        } else {
            "\"$2/pg_ctl\""
        };
        let script = format!(
            "while kill -0 \"$1\" 2>/dev/null; do sleep 0.5; done; \
             {stop} -D \"$3/data\" stop -m immediate >/dev/null 2>&1; rm -rf \"$3\""
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("hotline-pg-watchdog")
            .arg(std::process::id().to_string())
            .arg(bindir)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C to the test run must not take it down first.
            .process_group(0)
            .spawn()
            .expect("spawn the PostgreSQL watchdog");
    }

    /// A client binary (`psql`, `pg_isready`): the cluster's own, else from the PATH.
    fn client(&self, name: &str) -> PathBuf {
        let own = self.bindir.join(name);
        if own.exists() {
            own
        } else {
            PathBuf::from(name)
        }
    }

    /// Stops the server (fast shutdown: connections are cut, as in a database outage).
    pub fn stop(&self) {
        let out = as_postgres(&self.bindir.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-w", "-m", "fast", "stop"])
            .stdin(Stdio::null())
            .output()
            .expect("run pg_ctl stop");
        check("pg_ctl stop", &out);
    }

    /// Starts the server again on the same port and data after [`stop`](Self::stop).
    pub fn start_again(&self) {
        let options = server_options(self.port, &self.dir);
        let out = as_postgres(&self.bindir.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run pg_ctl start");
        assert!(out.success(), "pg_ctl start again failed ({out})");
    }

    /// The CA that signs the server's certificate (for `sslmode=require` clients).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// `postgres://postgres@127.0.0.1:PORT/db`
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` unless it exists (`name`: lower-case letters, digits, `_`).
    pub fn create_db(&self, name: &str) {
        assert!(
            !name.is_empty()
                && name.len() <= 63
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "a plain database name: {name:?}"
        );
        let _guard = self.creating.lock().unwrap_or_else(|e| e.into_inner());
        let exists = self.psql(
            "postgres",
            &format!("select count(*) from pg_database where datname = '{name}'"),
        );
        if exists == "0" {
            self.psql("postgres", &format!("create database {name}"));
        }
    }

    /// Runs `sql` in `db`; returns psql's unaligned, tuples-only output, trimmed.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("psql -d {db} -c {sql:?} failed: {e}"))
    }

    /// An open psql session in `db` that runs `sql` now and the rest when the returned
    /// [`PsqlSession`] is finished: for holding a lock while the gateway waits for it.
    pub fn session(&self, db: &str, sql: &str) -> PsqlSession {
        let mut child = self
            .psql_command(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn psql");
        let mut stdin = child.stdin.take().expect("psql's stdin");
        writeln!(stdin, "{sql}").expect("write to psql");
        PsqlSession { child, stdin }
    }

    /// psql on `db` with the options every call here uses.
    fn psql_command(&self, db: &str) -> Command {
        let mut c = Command::new(self.client("psql"));
        c.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-d",
            db,
        ])
        .env("PGCONNECT_TIMEOUT", "10");
        c
    }

    fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = self
            .psql_command(db)
            .args(["-c", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

/// A psql session left open by [`Postgres::session`].
pub struct PsqlSession {
    child: Child,
    stdin: std::process::ChildStdin,
}

impl PsqlSession {
    /// Runs `sql`, ends the session and waits for psql to exit; panics if it failed.
    pub fn finish(mut self, sql: &str) {
        writeln!(self.stdin, "{sql}").expect("write to psql");
        drop(self.stdin);
        let status = self.child.wait().expect("wait for psql");
        assert!(status.success(), "psql session: {status}");
    }
}

/// A Redis server on 127.0.0.1, no persistence; killed on drop.
pub struct Redis {
    /// The port it listens on (kept across [`Redis::restart`]).
    pub port: u16,
    child: Option<Child>,
    watchdog: Option<Child>,
    dir: tempfile::TempDir,
    /// TLS only (`rediss://`), with a certificate from its own CA.
    tls: bool,
}

impl Redis {
    /// Starts `redis-server` on a free port and waits until it answers PING.
    pub fn start() -> Redis {
        Redis::launch(false)
    }

    /// Starts `redis-server` answering TLS only, with a certificate for 127.0.0.1 signed by its
    /// own CA ([`ca_file`](Self::ca_file)).
    pub fn start_tls() -> Redis {
        Redis::launch(true)
    }

    fn launch(tls: bool) -> Redis {
        let mut r = Redis {
            port: free_port(),
            child: None,
            watchdog: None,
            dir: tempfile::tempdir().expect("a folder for redis"),
            tls,
        };
        if tls {
            make_certificates(r.dir.path());
        }
        r.spawn();
        r
    }

    /// The CA that signs a TLS server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// `redis://127.0.0.1:PORT/` (`rediss://` for a TLS server).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// Whether the server answers PING now.
    pub fn ping(&self) -> bool {
        if self.tls {
            return Command::new("redis-cli")
                .args(["--tls", "--cacert"])
                .arg(self.ca_file())
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "ping"])
                .output()
                .map(|o| o.stdout.starts_with(b"PONG"))
                .unwrap_or(false);
        }
        let Ok(mut s) = TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_millis(500),
        ) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 16];
        matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
    }

    /// Kills the server (SIGKILL) and its watchdog, and waits for both to exit.
    pub fn stop(&mut self) {
        for mut c in [self.child.take(), self.watchdog.take()]
            .into_iter()
            .flatten()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server if it runs, then starts it again on the same port (empty).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .expect("redis log file");
        let port = self.port.to_string();
        let d = self.dir.path().display();
        let listen: Vec<String> = if self.tls {
            vec![
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port.clone(),
                "--tls-cert-file".into(),
                format!("{d}/server.pem"),
                "--tls-key-file".into(),
                format!("{d}/server.key"),
                "--tls-ca-cert-file".into(),
                format!("{d}/ca.pem"),
                "--tls-auth-clients".into(),
                "no".into(),
            ]
        } else {
            vec!["--port".into(), port.clone()]
        };
        let child = Command::new("redis-server")
            .args(&listen)
            .args([
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("redis log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("redis-server must be installed (scripts/test installs redis-server)");
        self.watchdog = Some(Redis::watchdog(child.id(), self.port));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.ping() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                panic!(
                    "redis-server on port {port} exited with {status}:\n{}",
                    std::fs::read_to_string(self.log()).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} not answering PING after 30s:\n{}",
                std::fs::read_to_string(self.log()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server once this process has exited (a kill -9 runs no Drop). It checks the
    /// process is still that redis-server before it kills, and ends early once the server has.
    fn watchdog(pid: u32, port: u16) -> Child {
        let script = "while kill -0 \"$1\" 2>/dev/null && kill -0 \"$2\" 2>/dev/null; \
                      do sleep 0.5; done; \
                      if tr '\\000' ' ' < /proc/\"$2\"/cmdline 2>/dev/null \
                         | grep -q \"redis-server.*:$3\"; then kill -9 \"$2\"; fi";
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("hotline-redis-watchdog")
            .arg(std::process::id().to_string())
            .arg(pid.to_string())
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn the redis watchdog")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The storage backend the integration suites run against: `HOTLINE_TEST_BACKEND`,
/// "sqlite" (the default) or "postgres".
pub fn test_backend() -> &'static str {
    match std::env::var("HOTLINE_TEST_BACKEND").as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => "sqlite",
        Ok("postgres") => "postgres",
        Ok(other) => panic!("HOTLINE_TEST_BACKEND={other:?}: use \"sqlite\" or \"postgres\""),
    }
}

/// The database of a test folder: `t_` + 16 hex digits of a hash of its canonical path, so a
/// gateway restarted on the same folder reaches the same database.
pub fn db_name_for(dir: &Path) -> String {
    let path = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    // FNV-1a: stable across Rust versions, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("t_{h:016x}")
}

/// Runs `sql` on the store of the gateway whose config lives in `dir` (stopped, for SQLite),
/// on the backend [`test_backend`] names.
pub fn store_sql(dir: &Path, sql: &str) {
    match test_backend() {
        "postgres" => {
            postgres().psql(&db_name_for(dir), sql);
        }
        _ => {
            let db = rusqlite::Connection::open(dir.join("data").join("gateway.db"))
                .expect("open the store");
            db.execute_batch(sql).expect("run SQL on the store");
        }
    }
}

/// The body of the `[storage]` table for a gateway whose config lives in `dir`, on the backend
/// [`test_backend`] names.
pub fn storage_toml(dir: &Path) -> String {
    storage_toml_for(test_backend(), dir)
}

/// [`storage_toml`] for a named backend. For "postgres" the database is created on first use.
pub fn storage_toml_for(backend: &str, dir: &Path) -> String {
    match backend {
        "sqlite" => "path = \"data\"".to_string(),
        "postgres" => {
            let pg = postgres();
            let db = db_name_for(dir);
            pg.create_db(&db);
            format!(
                "backend = \"postgres\"\nurl = \"{}\"\npath = \"data\"",
                pg.url(&db)
            )
        }
        other => panic!("unknown test backend {other:?}"),
    }
}
