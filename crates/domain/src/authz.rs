//! Who may run what. Roles come from `member.roles` of the signed interaction; a DM has none.

use crate::config::Config;

/// Why a caller was refused. The text is shown to the caller and written to the audit record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("No admins are configured, so nobody may use this command. Set ADMIN_USER_IDS or ADMIN_ROLE_IDS.")]
    NoAdminsConfigured,
    #[error("You are not an admin of this bot (ADMIN_USER_IDS / ADMIN_ROLE_IDS).")]
    NotAdmin,
    #[error("/debug-last is turned off. Set ENABLE_DEBUG_CMD=true to turn it on.")]
    DebugDisabled,
    #[error("You are not in DEBUG_CMD_ALLOWED_USERS.")]
    DebugNotAllowed,
    #[error("You need one of the roles in DIAGNOSE_ROLE_IDS.")]
    DiagnoseRoleMissing,
    #[error("Only admins and members of RESPONDER_ROLE_IDS may act on incidents.")]
    NotResponder,
    #[error(
        "Only admins and members of DEPLOY_ROLE_IDS may deploy (ADMIN_USER_IDS / ADMIN_ROLE_IDS / DEPLOY_ROLE_IDS)."
    )]
    NotDeployer,
    #[error("Writing repository variables and secrets is turned off. Set ALLOW_SECRET_WRITES=true to turn it on.")]
    SecretWritesDisabled,
}

/// The caller of an interaction.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub user_id: u64,
    /// `None` in a DM, where there are no roles.
    pub roles: Option<&'a [u64]>,
}

impl Caller<'_> {
    fn has_any_role(&self, wanted: &[u64]) -> bool {
        self.roles.is_some_and(|roles| roles.iter().any(|r| wanted.contains(r)))
    }
}

/// Admins: a listed user, or a member holding a listed role. Both lists empty: nobody.
pub fn authorize_admin(caller: Caller<'_>, config: &Config) -> Result<(), Refusal> {
    if config.admin_user_ids.is_empty() && config.admin_role_ids.is_empty() {
        return Err(Refusal::NoAdminsConfigured);
    }
    if config.admin_user_ids.contains(&caller.user_id) || caller.has_any_role(&config.admin_role_ids) {
        Ok(())
    } else {
        Err(Refusal::NotAdmin)
    }
}

/// `/debug-last`: on only with `ENABLE_DEBUG_CMD`; `DEBUG_CMD_ALLOWED_USERS` may narrow it.
pub fn authorize_debug(caller: Caller<'_>, config: &Config) -> Result<(), Refusal> {
    if !config.enable_debug_cmd {
        return Err(Refusal::DebugDisabled);
    }
    if !config.debug_cmd_allowed_users.is_empty() && !config.debug_cmd_allowed_users.contains(&caller.user_id) {
        return Err(Refusal::DebugNotAllowed);
    }
    Ok(())
}

/// `/diagnose`: anyone, unless `DIAGNOSE_ROLE_IDS` names roles; admins always may.
pub fn authorize_diagnose(caller: Caller<'_>, config: &Config) -> Result<(), Refusal> {
    if config.diagnose_role_ids.is_empty()
        || caller.has_any_role(&config.diagnose_role_ids)
        || authorize_admin(caller, config).is_ok()
    {
        Ok(())
    } else {
        Err(Refusal::DiagnoseRoleMissing)
    }
}

/// Incident buttons: admins, and members of `RESPONDER_ROLE_IDS`.
pub fn authorize_responder(caller: Caller<'_>, config: &Config) -> Result<(), Refusal> {
    if caller.has_any_role(&config.responder_role_ids) || authorize_admin(caller, config).is_ok() {
        Ok(())
    } else {
        Err(Refusal::NotResponder)
    }
}

/// `/deploy-client`: admins, and members of `DEPLOY_ROLE_IDS`. With neither configured, the
/// refusal says what to set.
pub fn authorize_deploy(caller: Caller<'_>, config: &Config) -> Result<(), Refusal> {
    if caller.has_any_role(&config.deploy_role_ids) {
        return Ok(());
    }
    match authorize_admin(caller, config) {
        Ok(()) => Ok(()),
        Err(Refusal::NoAdminsConfigured) if config.deploy_role_ids.is_empty() => Err(Refusal::NoAdminsConfigured),
        Err(_) => Err(Refusal::NotDeployer),
    }
}

/// `/set-frontend`, `/set-api-base`: only with `ALLOW_SECRET_WRITES`, only admins.
pub fn authorize_secret_write(caller: Caller<'_>, config: &Config) -> Result<(), Refusal> {
    if !config.allow_secret_writes {
        return Err(Refusal::SecretWritesDisabled);
    }
    authorize_admin(caller, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(users: &[u64], roles: &[u64]) -> Config {
        let mut c = Config::from_lookup(|_| None).unwrap();
        c.admin_user_ids = users.to_vec();
        c.admin_role_ids = roles.to_vec();
        c
    }

    #[test]
    fn fails_closed_when_no_admins_are_configured() {
        let c = config(&[], &[]);
        let err = authorize_admin(Caller { user_id: 1, roles: Some(&[2]) }, &c).unwrap_err();
        assert_eq!(err, Refusal::NoAdminsConfigured);
        assert!(err.to_string().contains("ADMIN_USER_IDS") && err.to_string().contains("ADMIN_ROLE_IDS"));
    }

    #[test]
    fn listed_users_and_roles_are_admins() {
        let c = config(&[10], &[20]);
        assert!(authorize_admin(Caller { user_id: 10, roles: None }, &c).is_ok());
        assert!(authorize_admin(Caller { user_id: 11, roles: Some(&[5, 20]) }, &c).is_ok());
        assert_eq!(authorize_admin(Caller { user_id: 11, roles: Some(&[5]) }, &c), Err(Refusal::NotAdmin));
        // a DM carries no roles
        assert_eq!(authorize_admin(Caller { user_id: 11, roles: None }, &c), Err(Refusal::NotAdmin));
    }

    #[test]
    fn debug_command_gates() {
        let mut c = config(&[], &[]);
        assert_eq!(authorize_debug(Caller { user_id: 1, roles: None }, &c), Err(Refusal::DebugDisabled));
        c.enable_debug_cmd = true;
        assert!(authorize_debug(Caller { user_id: 1, roles: None }, &c).is_ok());
        c.debug_cmd_allowed_users = vec![2];
        assert_eq!(authorize_debug(Caller { user_id: 1, roles: None }, &c), Err(Refusal::DebugNotAllowed));
        assert!(authorize_debug(Caller { user_id: 2, roles: None }, &c).is_ok());
    }

    #[test]
    fn diagnose_roles() {
        let mut c = config(&[9], &[]);
        assert!(authorize_diagnose(Caller { user_id: 1, roles: None }, &c).is_ok());
        c.diagnose_role_ids = vec![7];
        assert_eq!(authorize_diagnose(Caller { user_id: 1, roles: Some(&[3]) }, &c), Err(Refusal::DiagnoseRoleMissing));
        assert!(authorize_diagnose(Caller { user_id: 1, roles: Some(&[7]) }, &c).is_ok());
        assert!(authorize_diagnose(Caller { user_id: 9, roles: None }, &c).is_ok());
    }

    #[test]
    fn responders_and_admins_act_on_incidents() {
        let mut c = config(&[9], &[]);
        c.responder_role_ids = vec![7];
        assert!(authorize_responder(Caller { user_id: 1, roles: Some(&[7]) }, &c).is_ok());
        assert!(authorize_responder(Caller { user_id: 9, roles: None }, &c).is_ok());
        assert_eq!(authorize_responder(Caller { user_id: 1, roles: Some(&[3]) }, &c), Err(Refusal::NotResponder));
        assert_eq!(authorize_responder(Caller { user_id: 1, roles: None }, &c), Err(Refusal::NotResponder));
    }
}

#[cfg(test)]
mod runbook_tests {
    use super::*;

    #[test]
    fn deploy_and_secret_write_gates() {
        let mut c = Config::from_lookup(|_| None).unwrap();
        let admin = Caller { user_id: 10, roles: Some(&[]) };
        let deployer = Caller { user_id: 11, roles: Some(&[30]) };
        let stranger = Caller { user_id: 12, roles: Some(&[5]) };
        assert_eq!(authorize_deploy(admin, &c), Err(Refusal::NoAdminsConfigured));
        c.admin_user_ids = vec![10];
        assert!(authorize_deploy(admin, &c).is_ok());
        assert_eq!(authorize_deploy(deployer, &c), Err(Refusal::NotDeployer));
        c.deploy_role_ids = vec![30];
        assert!(authorize_deploy(deployer, &c).is_ok());
        assert_eq!(authorize_deploy(stranger, &c), Err(Refusal::NotDeployer));
        assert_eq!(authorize_deploy(Caller { user_id: 11, roles: None }, &c), Err(Refusal::NotDeployer));

        assert_eq!(authorize_secret_write(admin, &c), Err(Refusal::SecretWritesDisabled));
        assert!(Refusal::SecretWritesDisabled.to_string().contains("ALLOW_SECRET_WRITES=true"));
        c.allow_secret_writes = true;
        assert!(authorize_secret_write(admin, &c).is_ok());
        assert_eq!(authorize_secret_write(deployer, &c), Err(Refusal::NotAdmin));
    }
}
