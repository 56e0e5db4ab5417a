//! valinectl: runs Valine locally, sends it signed requests, registers its commands, looks up
//! traces and audit records, and redacts logs.

mod devkeys;
mod incidents_cmd;
mod lookup;
mod outbox_cmd;
mod playground;
mod redact_cmd;
mod register;
mod routes_cmd;
mod send;
mod serve;
mod setup;
mod smoke;
mod stage;
mod workflows_cmd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use valine_domain::config::Config;

#[derive(Parser, Debug)]
#[command(name = "valinectl", version, about = "Run, poke and inspect the Valine ops bot")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run both handlers locally (POST /discord, POST /github/webhook, GET /health) on the
    /// embedded store in DATA_DIR, with the playground page at /. Discord and GitHub are
    /// in-process fakes unless --live. Loopback addresses only, unless --public.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8787")]
        addr: SocketAddr,
        /// Use the real Discord and GitHub clients (DISCORD_BOT_TOKEN, GITHUB_TOKEN or
        /// GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY). Without it those settings are ignored.
        #[arg(long)]
        live: bool,
        /// Answer on a non-loopback address (a shared dev box, a tunnel): every route but POST
        /// /discord, POST /github/webhook and GET /health… then needs `Authorization: Bearer
        /// $SERVE_TOKEN`, and the playground is off. Never with production tokens.
        #[arg(long)]
        public: bool,
    },
    /// Sign and send an interaction (`send status --count 3`) or a GitHub delivery
    /// (`send --webhook workflow_run FILE`) to a running `valinectl serve`, and print the answer.
    Send(Box<SendArgs>),
    /// Bulk-overwrite the slash commands, printing the difference first.
    Register {
        /// Register in one guild (instant) instead of globally.
        #[arg(long)]
        guild: Option<u64>,
        /// Print the difference and stop.
        #[arg(long)]
        dry_run: bool,
    },
    /// A stored trace and the matching log lines of both functions, as one timeline.
    Trace {
        trace_id: String,
        /// Skip CloudWatch Logs (read by default with --stage, or when AWS_REGION is set).
        #[arg(long)]
        no_logs: bool,
        /// How far back to search the logs, in hours.
        #[arg(long, default_value_t = 24)]
        hours: u64,
        #[command(flatten)]
        at: StageArgs,
    },
    /// Audit records: one by id, a user's newest, or whether a text is the one a record holds.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
        #[command(flatten)]
        at: StageArgs,
    },
    /// Copy stdin to stdout with every secret redacted (for pasting logs into an issue); with
    /// `--check`, scan files for leaked secrets instead.
    Redact {
        /// Scan files and print `file:line: kind (fp:…)` for each secret found (never the secret);
        /// exit 1 when anything is found. Honours `.redact-allow` in the current directory.
        #[arg(long)]
        check: bool,
        /// With --check: the files to scan (default: the files git tracks here).
        #[arg(requires = "check")]
        paths: Vec<PathBuf>,
    },
    /// Incidents with their durations, then per workflow: failures, MTTR and MTTD.
    Incidents {
        /// Only the open ones.
        #[arg(long)]
        open: bool,
        /// How far back (7d, 24h, 30m).
        #[arg(long, default_value = "7d")]
        since: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        at: StageArgs,
    },
    /// What waits to be sent to Discord (the outbox): per card, what it owes, since when, its
    /// failed attempts and last error, when it is tried next, and whether a sender holds it.
    Outbox {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        at: StageArgs,
    },
    /// Run the incident tick once, now (escalations, calmed flapping); with --stage, the deployed
    /// GitHub function runs it.
    Tick {
        #[command(flatten)]
        at: StageArgs,
    },
    /// The DynamoDB tables: print their CloudFormation, or create them on a DynamoDB server.
    Tables {
        #[command(subcommand)]
        action: TablesAction,
    },
    /// After `sam deploy`: set the Discord interactions URL, register the commands, create or
    /// update the repository webhook and check its ping. Idempotent. Needs DISCORD_BOT_TOKEN,
    /// GITHUB_TOKEN and GITHUB_WEBHOOK_SECRET.
    Setup(SetupCliArgs),
    /// Routes as code: check a ROUTES_FILE, or explain where a delivery would go and why.
    Routes {
        #[command(subcommand)]
        action: RoutesAction,
    },
    /// The workflows (.github/workflows, docs/examples): none may interpolate what its caller
    /// controls (`inputs.*`, `github.event.*`, `github.head_ref`) into a `run:` or `script:`.
    Workflows {
        #[command(subcommand)]
        action: WorkflowsAction,
    },
    /// After a deploy: health routes answer, Discord verification is on, a signed GitHub ping is
    /// accepted (with GITHUB_WEBHOOK_SECRET). One line per check; fails if any does.
    Smoke {
        /// The API's base URL (the stack's ApiUrl output).
        #[arg(long)]
        url: String,
    },
}

/// Where a look-up reads: the local store (STORE, DATA_DIR), or with `--stage` a deployed stage.
#[derive(Args, Debug, Default)]
struct StageArgs {
    /// A deployed stage instead of the local store: its tables and functions, named by its stack's
    /// outputs.
    #[arg(long, global = true)]
    stage: Option<String>,
    /// With --stage: the CloudFormation stack, if not valine-orchestrator-<stage>.
    #[arg(long, global = true, requires = "stage")]
    stack: Option<String>,
}

#[derive(Args, Debug)]
struct SetupCliArgs {
    /// The stage whose stack to read (stack valine-orchestrator-<stage>).
    #[arg(long, default_value = "dev")]
    stage: String,
    /// The CloudFormation stack, if not valine-orchestrator-<stage>.
    #[arg(long)]
    stack: Option<String>,
    /// The repository to send webhooks from (default GITHUB_REPO).
    #[arg(long)]
    repo: Option<String>,
    /// The API's base URL, instead of reading it from the stack.
    #[arg(long)]
    api_url: Option<String>,
    /// Print what would change, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Send GITHUB_WEBHOOK_SECRET to the existing webhook even when nothing else differs.
    #[arg(long)]
    reset_secret: bool,
}

#[derive(Args, Debug)]
struct SendArgs {
    /// The command: status, diagnose, relay-send, relay-dm, debug-last, incidents, mutes,
    /// deploy-client, set-frontend, set-api-base, verify-latest, or ping; `press` with `--custom-id`
    /// presses a button (Confirm / Cancel of a preview).
    command: Option<String>,
    /// A GitHub delivery instead: the event name and the payload file.
    #[arg(long, num_args = 2, value_names = ["EVENT", "FILE"])]
    webhook: Option<Vec<String>>,
    /// The server.
    #[arg(long, default_value = "http://127.0.0.1:8787")]
    url: String,
    #[arg(long)]
    count: Option<i64>,
    #[arg(long)]
    workflow: Option<String>,
    #[arg(long)]
    frontend_url: Option<String>,
    #[arg(long)]
    api_base: Option<String>,
    /// relay-send: the channel id.
    #[arg(long)]
    channel: Option<String>,
    /// relay-dm: the user id.
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    message: Option<String>,
    #[arg(long)]
    confirm: bool,
    /// relay: show the summary to the channel instead of only to the caller.
    #[arg(long)]
    public: bool,
    /// The user the interaction comes from (default: the first of ADMIN_USER_IDS, else a local id).
    #[arg(long)]
    as_user: Option<u64>,
    /// Roles of that user (repeatable).
    #[arg(long)]
    role: Vec<u64>,
    /// Another option, `name=value` (repeatable): `--opt repo=acme/web --opt events=all-runs`.
    #[arg(long = "opt")]
    opt: Vec<String>,
    /// The channel the command is typed in (for /subscribe and friends).
    #[arg(long)]
    in_channel: Option<u64>,
    /// deploy-client: the ref to deploy.
    #[arg(long = "ref")]
    git_ref: Option<String>,
    /// set-frontend, set-api-base: the URL to write.
    #[arg(long)]
    set_url: Option<String>,
    /// press: the button's custom id, as the preview shows it (`v1:confirm:yes:…`).
    #[arg(long)]
    custom_id: Option<String>,
}

#[derive(Subcommand, Debug)]
enum AuditAction {
    /// One record by its audit id.
    Show { audit_id: String },
    /// A user's newest records.
    User {
        user_id: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Reads a text on stdin and says whether it is the text the record's digest was made from.
    Verify { audit_id: String },
}

#[derive(Subcommand, Debug)]
enum RoutesAction {
    /// Validate a routes file (TOML); every error names its line. Exit 1 on any.
    Check { file: PathBuf },
    /// Every route in force (subscriptions in the store, ROUTES_FILE), whether it matches the
    /// delivery in FILE and why not, the incident key, and whether a message would be posted now.
    Explain {
        /// The delivery's event: workflow_run or deployment_status.
        #[arg(long)]
        event: String,
        /// The delivery's payload (JSON).
        file: PathBuf,
        /// A routes file to use instead of ROUTES_FILE.
        #[arg(long)]
        routes: Option<PathBuf>,
        #[command(flatten)]
        at: StageArgs,
    },
}

#[derive(Subcommand, Debug)]
enum WorkflowsAction {
    /// Lists every such interpolation with its file and line; exit 1 on any. Reads the files
    /// given (or the .yml and .yaml files of the directories given), else .github/workflows and
    /// docs/examples under the current directory.
    Check { paths: Vec<PathBuf> },
}

#[derive(Subcommand, Debug)]
enum TablesAction {
    /// Print the table resources as they stand in template.yaml.
    Cfn,
    /// Create the tables (AUDIT_TABLE_NAME, RUNS_TABLE_NAME, STATE_TABLE_NAME) on the DynamoDB
    /// server of AWS_ENDPOINT_URL (or AWS itself).
    Create,
}

fn config() -> Result<Config, String> {
    Config::from_env().map_err(|e| e.to_string())
}

/// Local look-ups use the same development keys as `serve`.
fn local_config() -> Result<Config, String> {
    let config = config()?;
    if config.store == valine_domain::config::StoreKind::Embedded { serve::local_config(config) } else { Ok(config) }
}

/// With `--stage`, the deployed stage (its tables, on DynamoDB); without, `None`.
async fn deployed(at: &StageArgs) -> Result<Option<stage::Stage>, String> {
    let Some(name) = &at.stage else { return Ok(None) };
    let stage = stage::Stage::resolve(config()?, name, at.stack.as_deref()).await?;
    eprintln!("{}", stage.describe());
    Ok(Some(stage))
}

/// The configuration a look-up reads with: the stage's (`--stage`), else the local one.
async fn lookup_config(at: &StageArgs) -> Result<Config, String> {
    match deployed(at).await? {
        Some(stage) => Ok(stage.config),
        None => local_config(),
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve { addr, live, public } => serve::run(addr, live, public).await,
        Command::Send(args) => {
            let config = local_config()?;
            let answer = match (&args.webhook, &args.command) {
                (Some(w), _) => {
                    // clap takes exactly two values
                    let [event, file] = w.as_slice() else { return Err("--webhook takes EVENT FILE".into()) };
                    send::webhook(&args.url, &config, event, &PathBuf::from(file)).await?
                }
                (None, Some(command)) => {
                    let interaction = send::Interaction {
                        command: command.trim_start_matches('/').to_string(),
                        count: args.count,
                        workflow: args.workflow,
                        frontend_url: args.frontend_url,
                        api_base: args.api_base,
                        channel: args.channel,
                        user: args.user,
                        message: args.message,
                        confirm: args.confirm,
                        public: args.public,
                        as_user: args
                            .as_user
                            .or(config.admin_user_ids.first().copied())
                            .unwrap_or(100_000_000_000_000_042),
                        roles: args.role,
                        options: args.opt,
                        in_channel: args.in_channel,
                        git_ref: args.git_ref,
                        set_url: args.set_url,
                        press: args.custom_id.filter(|_| command.trim_start_matches('/') == "press"),
                    };
                    send::interaction(&args.url, &config, &interaction).await?
                }
                (None, None) => {
                    return Err("say what to send: a command (`send status`) or `--webhook EVENT FILE`".into());
                }
            };
            println!("{}", send::describe(&answer));
            if answer.status >= 400 { Err(format!("the server answered {}", answer.status)) } else { Ok(()) }
        }
        Command::Register { guild, dry_run } => register::run(&config()?, guild, dry_run).await,
        Command::Trace { trace_id, no_logs, hours, at } => {
            let (config, groups) = match deployed(&at).await? {
                Some(stage) => {
                    let groups = stage.log_groups();
                    (stage.config, Some(groups))
                }
                None => {
                    let config = local_config()?;
                    let groups = config.aws_region.is_some().then(|| lookup::log_groups(&config.stage));
                    (config, groups)
                }
            };
            let groups = groups.filter(|_| !no_logs);
            print!("{}", lookup::trace(&config, &trace_id, hours, groups.as_deref()).await?);
            Ok(())
        }
        Command::Audit { action, at } => {
            let config = lookup_config(&at).await?;
            match action {
                AuditAction::Show { audit_id } => println!("{}", lookup::audit_show(&config, &audit_id).await?),
                AuditAction::User { user_id, limit } => {
                    println!("{}", lookup::audit_user(&config, &user_id, limit).await?.trim_end())
                }
                AuditAction::Verify { audit_id } => {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| e.to_string())?;
                    let text = text.strip_suffix('\n').unwrap_or(&text);
                    if lookup::audit_verify(&config, &audit_id, text).await? {
                        println!("match: this is the text record {audit_id} was made from");
                    } else {
                        return Err(format!("no match: record {audit_id} was made from another text"));
                    }
                }
            }
            Ok(())
        }
        Command::Redact { check: true, paths } => {
            let root = std::env::current_dir().map_err(|e| e.to_string())?;
            let report = redact_cmd::check(&root, &paths, &mut std::io::stdout().lock())?;
            eprintln!("redact --check: {} file(s) scanned, nothing found", report.files);
            Ok(())
        }
        Command::Workflows { action: WorkflowsAction::Check { paths } } => {
            let root = std::env::current_dir().map_err(|e| e.to_string())?;
            let report = workflows_cmd::check(&root, &paths)?;
            for line in &report.lines {
                println!("{line}");
            }
            if report.lines.is_empty() {
                eprintln!("workflows check: {} file(s), no input interpolated into a script", report.files);
                Ok(())
            } else {
                Err(format!("workflows check: {} interpolation(s) into a script", report.lines.len()))
            }
        }
        Command::Redact { check: false, .. } => {
            match redact_cmd::run(std::io::stdin().lock(), std::io::stdout().lock()) {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        }
        Command::Setup(a) => {
            let args = setup::SetupArgs {
                stage: a.stage,
                stack: a.stack,
                repo: a.repo,
                api_url: a.api_url,
                dry_run: a.dry_run,
                reset_secret: a.reset_secret,
            };
            setup::run(config()?, args).await
        }
        Command::Smoke { url } => smoke::run(&url, config()?.github_webhook_secret.as_ref()).await,
        Command::Incidents { open, since, json, at } => {
            print!("{}", incidents_cmd::incidents(&lookup_config(&at).await?, open, &since, json).await?);
            Ok(())
        }
        Command::Outbox { json, at } => {
            print!("{}", outbox_cmd::outbox(&lookup_config(&at).await?, json).await?);
            Ok(())
        }
        Command::Routes { action: RoutesAction::Check { file } } => {
            print!("{}", routes_cmd::check(&file, &config()?)?);
            Ok(())
        }
        Command::Routes { action: RoutesAction::Explain { event, file, routes, at } } => {
            let mut config = lookup_config(&at).await?;
            if at.stage.is_some() {
                eprintln!(
                    "(subscriptions and incidents from the stage's state table; GITHUB_REPOS, ENABLE_ALERTS, \
                     ALERT_CHANNEL_ID and ROUTES_FILE from this shell)"
                );
            }
            if routes.is_some() {
                config.routes_file = routes;
                config.routes_toml = None;
            }
            print!("{}", routes_cmd::explain_now(&config, &event, &file).await?);
            Ok(())
        }
        Command::Tick { at } => {
            match deployed(&at).await? {
                Some(stage) => println!("{}", incidents_cmd::tick_deployed(&stage).await?),
                None => println!("{}", incidents_cmd::tick(local_config()?).await?),
            }
            Ok(())
        }
        Command::Tables { action: TablesAction::Cfn } => {
            print!("{}", valine_store::schema::cloudformation_tables());
            Ok(())
        }
        Command::Tables { action: TablesAction::Create } => {
            let config = config()?;
            let sdk = valine_store::dynamo::sdk_config().await;
            let client = aws_sdk_dynamodb::Client::new(&sdk);
            let names = valine_store::dynamo::TableNames::from_config(&config);
            eprintln!("Creating {}, {} and {}…", names.audit, names.runs, names.state);
            valine_store::dynamo::create_tables(&client, &names).await.map_err(|e| e.to_string())?;
            println!("Tables ready: {}, {}, {}", names.audit, names.runs, names.state);
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `redact` streams synchronously; everything else needs the runtime.
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("valinectl: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("valinectl: {}", valine_domain::redact::redact(&e));
            ExitCode::FAILURE
        }
    }
}
