//! The `lms-realtime` binary: serve (the default), mint a development token, or write the
//! TypeScript declarations.

use clap::{Parser, Subcommand};
use lms_realtime::auth::{Role, mint_hs256};
use lms_realtime::{Application, Config, telemetry};

#[derive(Parser)]
#[command(
    name = "lms-realtime",
    version,
    about = "Real-time Socket.IO gateway for multi-tenant LMSs"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Mint an HS256 token for development and testing.
    Token {
        #[arg(long)]
        sub: String,
        /// Tenant id (omit only for super_admin).
        #[arg(long)]
        tenant: Option<String>,
        /// student, instructor, admin, super_admin or service.
        #[arg(long, default_value = "student")]
        role: String,
        /// The HS256 secret (defaults to JWT_SECRET).
        #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
        secret: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
    /// Copy the old Redis key layout (one hash tag per tenant) into the current one (tags
    /// per user, course and notification; bodies stored once). Needs REDIS_URL; safe on a
    /// live cluster and safe to repeat. See docs/cluster.md.
    MigrateKeys {
        /// Delete each old key once it is copied.
        #[arg(long)]
        delete_old: bool,
    },
    /// Write the TypeScript declarations generated from the Rust types.
    GenTs {
        #[arg(long, default_value = "clients/typescript/src/generated")]
        out: std::path::PathBuf,
    },
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("lms-realtime: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Token {
            sub,
            tenant,
            role,
            secret,
            ttl,
        }) => {
            let role =
                Role::parse(&role).ok_or_else(|| anyhow::anyhow!("unknown role {role:?}"))?;
            println!(
                "{}",
                mint_hs256(&secret, &sub, tenant.as_deref(), role, ttl)?
            );
            Ok(())
        }
        Some(Command::GenTs { out }) => {
            for (name, contents) in lms_realtime::typescript::render_all() {
                std::fs::create_dir_all(&out)?;
                std::fs::write(out.join(name), contents)?;
            }
            Ok(())
        }
        Some(Command::MigrateKeys { delete_old }) => migrate_keys(cli.config, delete_old).await,
        None => serve(cli.config).await,
    }
}

async fn migrate_keys(config: Config, delete_old: bool) -> anyhow::Result<()> {
    use fred::interfaces::ClientLike;
    let url = config
        .redis_url
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("migrate-keys needs REDIS_URL"))?;
    let (fred_config, perf, connection, policy) =
        lms_realtime::cluster::client_config_with_tls(&url.0, &config.redis_tls())?;
    let client =
        fred::clients::Client::new(fred_config, Some(perf), Some(connection), Some(policy));
    client.init().await?;
    let store = lms_realtime::store::redis::RedisStore::new(client, config.store_limits());
    let report = lms_realtime::store::migrate::migrate_keys(&store, delete_old).await?;
    println!(
        "migrated {} inboxes ({} entries) and {} courses ({} memberships); {} unreadable left in place; {} inboxes of the per-user layout checked, {} membership keys given their idle TTL",
        report.inboxes,
        report.entries,
        report.courses,
        report.memberships,
        report.unreadable,
        report.upgraded,
        report.ttl_set
    );
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let traces = telemetry::init(config.log_format, config.trace_export()?.as_ref())?;
    let app = Application::build(config).await?;
    let shutdown = app.shutdown_handle();
    tokio::spawn(async move {
        wait_for_signal().await;
        shutdown.trigger();
    });
    // On a worker, not the main thread that `block_on` drives: accepted connections then
    // start on the accepting worker's local queue instead of waking another thread each.
    let result = tokio::spawn(app.run_until_stopped()).await?;
    if let Some(traces) = traces {
        traces.shutdown().await;
    }
    result
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
