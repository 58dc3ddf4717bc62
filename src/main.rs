//! `hotline-gateway`: the command line. Everything else lives in the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use hotline_gateway::config::{Config, DEFAULT_CONFIG_PATH};
use std::path::PathBuf;

/// mimalloc instead of the system allocator: every request allocates and frees many small
/// strings and JSON nodes, and glibc's malloc/free were ~13 % of the gateway's samples under
/// load (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "hotline-gateway",
    version,
    about = "Front door of the 12345 hotline"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Config file.
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Validate a config and print every problem at once (exit 0 / 1).
    CheckConfig {
        /// Config file.
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Run a reference core dispatch API for demos and tests.
    DispatchSim {
        /// Address to listen on.
        #[arg(long)]
        listen: String,
        /// JSON-lines file of accepted requests.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Fraction of requests answered 503.
        #[arg(long, default_value_t = 0.0)]
        fail_rate: f64,
        /// Fraction of orders answered 400.
        #[arg(long, default_value_t = 0.0)]
        reject_rate: f64,
        /// Latency added to each request, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Latency added after a request is recorded, before its answer, in milliseconds (a
        /// core that commits, then answers after the gateway's time-out).
        #[arg(long, default_value_t = 0)]
        answer_late_ms: u64,
        /// Verify X-Hotline-Signature with this secret.
        #[arg(long)]
        secret: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    // One TLS crypto provider for the whole process (reqwest, lettre, PostgreSQL, Redis): rustls
    // refuses to guess when more than one could be compiled in. An error only means one is
    // installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve {
        config: PathBuf::from(DEFAULT_CONFIG_PATH),
    }) {
        Command::Serve { config } => {
            let cfg = Config::load(&config, std::env::vars())?;
            init_tracing(&cfg.server.log_format);
            tracing::info!(config = %config.display(), summary = %cfg.summary(), "Configuration loaded.");
            let listener = std::net::TcpListener::bind(cfg.derived.listen)
                .with_context(|| format!("cannot listen on {}", cfg.derived.listen))?;
            actix_web::rt::System::new().block_on(async move {
                // The actix system runs on a current-thread runtime per worker; the relay and
                // store callers are plain tokio tasks on it.
                hotline_gateway::run(cfg, listener).await
            })?;
            Ok(())
        }
        // Every problem at once: the config's, and those of the files it names (rule files,
        // the rules folder, CA files), which `serve` would work around.
        Command::CheckConfig { config } => match Config::check(&config, std::env::vars()) {
            Ok(cfg) => {
                // Unsafe but allowed (see `Derived::cautions`): said, not refused.
                for c in &cfg.derived.cautions {
                    eprintln!("warning: {c}");
                }
                println!("ok: {}", cfg.summary());
                Ok(())
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        },
        Command::DispatchSim {
            listen,
            out,
            fail_rate,
            reject_rate,
            latency_ms,
            answer_late_ms,
            secret,
        } => {
            init_tracing("text");
            let listener = std::net::TcpListener::bind(&listen)
                .with_context(|| format!("cannot listen on {listen}"))?;
            let local = listener.local_addr()?;
            println!("dispatch-sim listening on http://{local}");
            let cfg = hotline_gateway::sim::SimConfig {
                out,
                fail_rate,
                reject_rate,
                latency: std::time::Duration::from_millis(latency_ms),
                answer_late: std::time::Duration::from_millis(answer_late_ms),
                secret,
            };
            actix_web::rt::System::new().block_on(hotline_gateway::sim::run(cfg, listener))?;
            Ok(())
        }
    }
}

fn init_tracing(format: &str) {
    use tracing_subscriber::util::SubscriberInitExt;
    hotline_gateway::log_subscriber(
        std::env::var("RUST_LOG").ok().as_deref(),
        "info",
        format == "json",
        std::io::stdout,
    )
    .init();
}
