//! `--stage STAGE [--stack NAME]`: a deployed stage, found through its CloudFormation stack. The
//! stack's outputs name the tables and functions; the look-ups then run on the stage's DynamoDB
//! tables (whatever the local `STORE` and `DATA_DIR` say), and `tick` invokes the stage's GitHub
//! function. `setup` reads the stack here too.

use std::collections::BTreeMap;
use std::time::Duration;

use valine_domain::config::{Config, StoreKind};

/// The alias both functions publish (`AutoPublishAlias: live` in template.yaml) and the API calls.
pub(crate) const LIVE_ALIAS: &str = "live";

/// The stack a stage is deployed as, unless `--stack` names another (samconfig.toml).
pub(crate) fn stack_name(stage: &str, stack: Option<&str>) -> String {
    stack.map_or_else(|| format!("valine-orchestrator-{stage}"), str::to_string)
}

/// A stack's status and outputs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stack {
    pub name: String,
    /// The stage it was read for (what `sam deploy --config-env` takes).
    pub stage: String,
    pub status: String,
    pub region: Option<String>,
    outputs: BTreeMap<String, String>,
}

impl Stack {
    /// For tests: a stack with these outputs.
    #[cfg(test)]
    pub(crate) fn with_outputs(name: &str, stage: &str, status: &str, outputs: &[(&str, &str)]) -> Self {
        Self {
            name: name.into(),
            stage: stage.into(),
            status: status.into(),
            region: Some("us-east-1".into()),
            outputs: outputs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    /// Reads the stack with the usual AWS settings (`AWS_REGION`, the credentials chain;
    /// `AWS_ENDPOINT_URL` points it elsewhere). Errors say what to do.
    pub(crate) async fn read(name: &str, stage: &str) -> Result<Self, String> {
        let sdk = valine_store::dynamo::sdk_loader()
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder().operation_timeout(Duration::from_secs(30)).build(),
            )
            .load()
            .await;
        let region = sdk.region().map(|r| r.to_string()).filter(|r| !r.is_empty());
        let Some(region_name) = region.clone() else {
            return Err(format!(
                "cannot read stack {name}: no AWS region; set AWS_REGION to the stage's region (and AWS credentials)"
            ));
        };
        let client = aws_sdk_cloudformation::Client::new(&sdk);
        let answer = client.describe_stacks().stack_name(name).send().await.map_err(|e| {
            let detail = aws_sdk_cloudformation::error::DisplayErrorContext(&e).to_string();
            if detail.contains("does not exist") {
                format!(
                    "there is no stack {name} in {region_name}: deploy the stage first (`sam build && sam deploy \
                     --config-env {stage}`), check AWS_REGION, or name the stack with --stack"
                )
            } else {
                format!(
                    "cannot read stack {name} in {region_name} ({detail}); check AWS_REGION and the AWS credentials"
                )
            }
        })?;
        let found = answer.stacks().first().ok_or_else(|| format!("there is no stack {name} in {region_name}"))?;
        Ok(Self {
            name: name.to_string(),
            stage: stage.to_string(),
            status: found.stack_status().map_or_else(|| "status unknown".into(), |s| s.as_str().to_string()),
            region,
            outputs: found
                .outputs()
                .iter()
                .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
                .collect(),
        })
    }

    pub(crate) fn output(&self, key: &str) -> Option<&str> {
        self.outputs.get(key).map(String::as_str)
    }

    /// An output the command cannot do without; its absence means the stack is not (or no
    /// longer) the template's.
    pub(crate) fn require(&self, key: &str) -> Result<&str, String> {
        self.output(key).ok_or_else(|| {
            format!(
                "stack {} ({}) has no {key} output: deploy the stage with this repository's template.yaml \
                 (`sam build && sam deploy --config-env {}`)",
                self.name, self.status, self.stage
            )
        })
    }

    /// A failed or rolled-back stack, whose outputs may be gone or stale.
    pub(crate) fn unhealthy(&self) -> bool {
        self.status.ends_with("_FAILED") || self.status.contains("ROLLBACK")
    }
}

/// A deployed stage: its stack, and the configuration that reaches its tables.
#[derive(Debug, Clone)]
pub(crate) struct Stage {
    pub stack: Stack,
    pub config: Config,
}

impl Stage {
    /// Reads the stage's stack and points `base` at its tables.
    pub(crate) async fn resolve(base: Config, stage: &str, stack: Option<&str>) -> Result<Self, String> {
        let stack = Stack::read(&stack_name(stage, stack), stage).await?;
        Self::from_stack(base, stack)
    }

    /// `base` with the stack's table names, the DynamoDB store and the stage's name.
    pub(crate) fn from_stack(mut base: Config, stack: Stack) -> Result<Self, String> {
        base.audit_table_name = stack.require("AuditTableName")?.to_string();
        base.runs_table_name = stack.require("RunsTableName")?.to_string();
        base.state_table_name = stack.require("StateTableName")?.to_string();
        base.store = StoreKind::DynamoDb;
        base.stage.clone_from(&stack.stage);
        if base.aws_region.is_none() {
            base.aws_region.clone_from(&stack.region);
        }
        Ok(Self { stack, config: base })
    }

    /// One line for stderr: which stack and tables a command works on.
    pub(crate) fn describe(&self) -> String {
        let warning = if self.stack.unhealthy() { " (not a healthy deployment: its outputs may be stale)" } else { "" };
        format!(
            "stage {}: stack {} ({}{warning}), tables {}, {}, {}",
            self.stack.stage,
            self.stack.name,
            self.stack.status,
            self.config.audit_table_name,
            self.config.runs_table_name,
            self.config.state_table_name
        )
    }

    /// The log groups of the stage's two functions (`/aws/lambda/<function name>`).
    pub(crate) fn log_groups(&self) -> Vec<String> {
        [("DiscordFunctionName", "discord"), ("GitHubFunctionName", "github")]
            .into_iter()
            .map(|(key, function)| match self.stack.output(key) {
                Some(name) => format!("/aws/lambda/{name}"),
                None => format!("/aws/lambda/valine-orchestrator-{function}-{}", self.stack.stage),
            })
            .collect()
    }

    /// The GitHub function's name, which `tick` invokes at [`LIVE_ALIAS`].
    pub(crate) fn github_function(&self) -> Result<&str, String> {
        self.stack.require("GitHubFunctionName")
    }
}

/// The store a look-up reads. On DynamoDB with an operator's patience (connect 5 s, each attempt
/// 20 s, three attempts) rather than the functions' 1.6 s budget, which is there for Discord's 3 s
/// and would fail a long listing over a slow link; look-ups only read, so a retry is harmless.
pub(crate) async fn lookup_stores(config: &Config) -> Result<valine_store::Stores, String> {
    match config.store {
        StoreKind::DynamoDb => {
            let sdk = valine_store::dynamo::sdk_loader()
                .timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(5))
                        .operation_attempt_timeout(Duration::from_secs(20))
                        .operation_timeout(Duration::from_secs(60))
                        .build(),
                )
                .load()
                .await;
            Ok(valine_store::Stores::dynamodb(config, &sdk))
        }
        StoreKind::Embedded => valine_store::Stores::open(config).await.map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs() -> Vec<(&'static str, &'static str)> {
        vec![
            ("AuditTableName", "valine-orchestrator-audit-staging"),
            ("RunsTableName", "valine-orchestrator-runs-staging"),
            ("StateTableName", "valine-orchestrator-state-staging"),
            ("GitHubFunctionName", "valine-orchestrator-github-staging"),
            ("DiscordFunctionName", "valine-orchestrator-discord-staging"),
        ]
    }

    fn base() -> Config {
        Config::from_lookup(|k| match k {
            "STORE" => Some("embedded".into()),
            "AUDIT_TABLE_NAME" => Some("local-audit".into()),
            _ => None,
        })
        .unwrap()
    }

    #[test]
    fn a_stage_reads_its_tables_from_the_stack_whatever_store_says() {
        let stack = Stack::with_outputs("valine-orchestrator-staging", "staging", "UPDATE_COMPLETE", &outputs());
        let stage = Stage::from_stack(base(), stack).unwrap();
        assert_eq!(stage.config.store, StoreKind::DynamoDb);
        assert_eq!(stage.config.audit_table_name, "valine-orchestrator-audit-staging");
        assert_eq!(stage.config.runs_table_name, "valine-orchestrator-runs-staging");
        assert_eq!(stage.config.state_table_name, "valine-orchestrator-state-staging");
        assert_eq!(stage.config.stage, "staging");
        assert_eq!(stage.github_function().unwrap(), "valine-orchestrator-github-staging");
        assert_eq!(
            stage.log_groups(),
            ["/aws/lambda/valine-orchestrator-discord-staging", "/aws/lambda/valine-orchestrator-github-staging"]
        );
        assert!(stage.describe().starts_with("stage staging: stack valine-orchestrator-staging (UPDATE_COMPLETE), tables valine-orchestrator-audit-staging"), "{}", stage.describe());
    }

    #[test]
    fn a_stack_without_the_outputs_says_to_deploy() {
        let stack = Stack::with_outputs("valine-orchestrator-dev", "dev", "ROLLBACK_COMPLETE", &[]);
        let err = Stage::from_stack(base(), stack).unwrap_err();
        assert!(
            err.contains("stack valine-orchestrator-dev (ROLLBACK_COMPLETE) has no AuditTableName output"),
            "{err}"
        );
        assert!(err.contains("sam deploy --config-env dev"), "{err}");
    }

    #[test]
    fn log_groups_fall_back_to_the_stage_names() {
        let mut outs = outputs();
        outs.retain(|(k, _)| !k.ends_with("FunctionName"));
        let stage = Stage::from_stack(base(), Stack::with_outputs("s", "dev", "CREATE_COMPLETE", &outs)).unwrap();
        assert_eq!(
            stage.log_groups(),
            ["/aws/lambda/valine-orchestrator-discord-dev", "/aws/lambda/valine-orchestrator-github-dev"]
        );
        assert!(stage.github_function().unwrap_err().contains("no GitHubFunctionName output"));
    }

    #[test]
    fn the_stack_is_named_after_the_stage_unless_given() {
        assert_eq!(stack_name("prod", None), "valine-orchestrator-prod");
        assert_eq!(stack_name("prod", Some("other")), "other");
    }
}
