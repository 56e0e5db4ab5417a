//! The three DynamoDB tables, described once. `valinectl tables create` builds local tables
//! from this description, and `template.yaml` carries the same description (a test compares
//! them), so local and deployed tables cannot drift apart.

use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    S,
    N,
}

impl AttrType {
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::S => "S",
            AttrType::N => "N",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAttr {
    pub name: &'static str,
    pub ty: AttrType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: &'static str,
    pub hash: KeyAttr,
    pub range: Option<KeyAttr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    /// The resource name in `template.yaml`.
    pub logical_id: &'static str,
    /// The table name without its `-<stage>` suffix.
    pub base_name: &'static str,
    /// The variable that overrides the name.
    pub env_var: &'static str,
    pub hash: KeyAttr,
    pub range: Option<KeyAttr>,
    pub indexes: &'static [IndexSpec],
    pub ttl_attribute: Option<&'static str>,
    /// Point-in-time recovery and deletion protection: for records nobody may lose.
    pub protected: bool,
}

pub const AUDIT_USER_INDEX: &str = "user_id-timestamp-index";
pub const RUNS_WORKFLOW_INDEX: &str = "workflow_key-updated_at-index";

pub const AUDIT: TableSpec = TableSpec {
    logical_id: "AuditTable",
    base_name: "valine-orchestrator-audit",
    env_var: "AUDIT_TABLE_NAME",
    hash: KeyAttr { name: "audit_id", ty: AttrType::S },
    range: None,
    indexes: &[IndexSpec {
        name: AUDIT_USER_INDEX,
        hash: KeyAttr { name: "user_id", ty: AttrType::S },
        range: Some(KeyAttr { name: "timestamp", ty: AttrType::N }),
    }],
    ttl_attribute: None,
    protected: true,
};

pub const RUNS: TableSpec = TableSpec {
    logical_id: "RunsTable",
    base_name: "valine-orchestrator-runs",
    env_var: "RUNS_TABLE_NAME",
    hash: KeyAttr { name: "run_id", ty: AttrType::N },
    range: None,
    indexes: &[IndexSpec {
        name: RUNS_WORKFLOW_INDEX,
        hash: KeyAttr { name: "workflow_key", ty: AttrType::S },
        range: Some(KeyAttr { name: "updated_at", ty: AttrType::N }),
    }],
    ttl_attribute: None,
    protected: true,
};

pub const STATE: TableSpec = TableSpec {
    logical_id: "StateTable",
    base_name: "valine-orchestrator-state",
    env_var: "STATE_TABLE_NAME",
    hash: KeyAttr { name: "pk", ty: AttrType::S },
    range: Some(KeyAttr { name: "sk", ty: AttrType::S }),
    indexes: &[],
    ttl_attribute: Some("expires_at"),
    // Open incidents, mutes, subscriptions and delivery records: kept through a stack deletion or
    // replacement, and recoverable from a bad write.
    protected: true,
};

pub const TABLES: [&TableSpec; 3] = [&AUDIT, &RUNS, &STATE];

impl TableSpec {
    /// Every attribute that appears in a key of the table or of an index, once.
    pub fn key_attributes(&self) -> Vec<KeyAttr> {
        let mut attrs = vec![self.hash];
        attrs.extend(self.range);
        for index in self.indexes {
            attrs.push(index.hash);
            attrs.extend(index.range);
        }
        let mut seen = Vec::new();
        attrs.retain(|a| {
            let first = !seen.contains(&a.name);
            seen.push(a.name);
            first
        });
        attrs
    }

    /// The CloudFormation resource for this table, as it stands in `template.yaml`.
    pub fn cloudformation(&self) -> String {
        let mut y = String::new();
        let _ = writeln!(y, "  {}:", self.logical_id);
        let _ = writeln!(y, "    Type: AWS::DynamoDB::Table");
        if self.protected {
            let _ = writeln!(y, "    DeletionPolicy: Retain");
            let _ = writeln!(y, "    UpdateReplacePolicy: Retain");
        }
        let _ = writeln!(y, "    Properties:");
        let _ = writeln!(y, "      TableName: !Sub {}-${{Stage}}", self.base_name);
        let _ = writeln!(y, "      BillingMode: PAY_PER_REQUEST");
        let _ = writeln!(y, "      AttributeDefinitions:");
        for a in self.key_attributes() {
            let _ = writeln!(y, "        - AttributeName: {}", a.name);
            let _ = writeln!(y, "          AttributeType: {}", a.ty.as_str());
        }
        let _ = writeln!(y, "      KeySchema:");
        write_keys(&mut y, "        ", self.hash, self.range);
        if !self.indexes.is_empty() {
            let _ = writeln!(y, "      GlobalSecondaryIndexes:");
            for index in self.indexes {
                let _ = writeln!(y, "        - IndexName: {}", index.name);
                let _ = writeln!(y, "          KeySchema:");
                write_keys(&mut y, "            ", index.hash, index.range);
                let _ = writeln!(y, "          Projection:");
                let _ = writeln!(y, "            ProjectionType: ALL");
            }
        }
        if let Some(ttl) = self.ttl_attribute {
            let _ = writeln!(y, "      TimeToLiveSpecification:");
            let _ = writeln!(y, "        AttributeName: {ttl}");
            let _ = writeln!(y, "        Enabled: true");
        }
        if self.protected {
            let _ = writeln!(y, "      DeletionProtectionEnabled: true");
            let _ = writeln!(y, "      PointInTimeRecoverySpecification:");
            let _ = writeln!(y, "        PointInTimeRecoveryEnabled: true");
        }
        let _ = writeln!(y, "      SSESpecification:");
        let _ = writeln!(y, "        SSEEnabled: true");
        y
    }
}

fn write_keys(y: &mut String, indent: &str, hash: KeyAttr, range: Option<KeyAttr>) {
    let _ = writeln!(y, "{indent}- AttributeName: {}", hash.name);
    let _ = writeln!(y, "{indent}  KeyType: HASH");
    if let Some(r) = range {
        let _ = writeln!(y, "{indent}- AttributeName: {}", r.name);
        let _ = writeln!(y, "{indent}  KeyType: RANGE");
    }
}

/// The table resources of `template.yaml`, between its `# BEGIN tables` and `# END tables` lines.
pub fn cloudformation_tables() -> String {
    TABLES.iter().map(|t| t.cloudformation()).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_carries_this_description() {
        let template = include_str!("../../../template.yaml");
        let begin = template.find("# BEGIN tables\n").expect("template.yaml has a `# BEGIN tables` line") + 15;
        let end = template.find("  # END tables").expect("template.yaml has a `# END tables` line");
        assert_eq!(
            &template[begin..end],
            cloudformation_tables(),
            "template.yaml's tables differ from crates/core/src/store/schema.rs; \
             regenerate them with `valinectl tables cfn`"
        );
    }

    #[test]
    fn key_attributes_are_listed_once() {
        let names: Vec<_> = STATE.key_attributes().iter().map(|a| a.name).collect();
        assert_eq!(names, ["pk", "sk"]);
        let names: Vec<_> = AUDIT.key_attributes().iter().map(|a| a.name).collect();
        assert_eq!(names, ["audit_id", "user_id", "timestamp"]);
    }
}
