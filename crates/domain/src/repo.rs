//! Repository names: `owner/name` ([`RepoName`]), `owner/*` too ([`RepoPattern`]), and the
//! repositories the bot may touch ([`RepoScope`]). A leaf: the configuration, routing, the
//! clients and the commands all read repositories through this one parser.

use std::fmt;
use std::str::FromStr;

/// GitHub's limit on an owner's or a repository's name, with room to spare for owners.
const MAX_PART: usize = 100;

/// `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoName {
    pub owner: String,
    pub name: String,
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// Why a text is not `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not owner/name: {problem}")]
pub struct RepoNameError {
    /// The text, trimmed.
    pub text: String,
    pub problem: String,
}

/// One side of the `/`: letters, digits, `-`, `_` and `.`, at most [`MAX_PART`] of them.
fn check_part(what: &str, part: &str) -> Result<(), String> {
    if part.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if part.len() > MAX_PART {
        return Err(format!("the {what} is longer than {MAX_PART} characters"));
    }
    match part.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(*c))) {
        Some(c) => Err(format!("the {what} `{part}` has `{c}`; only letters, digits, `-`, `_` and `.` may be used")),
        None => Ok(()),
    }
}

impl FromStr for RepoName {
    type Err = RepoNameError;

    /// `owner/name`, surrounding blanks ignored.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let error = |problem: String| RepoNameError { text: text.to_string(), problem };
        let (owner, name) = text.split_once('/').ok_or_else(|| error("there is no `/` after the owner".into()))?;
        check_part("owner", owner).map_err(error)?;
        check_part("name", name).map_err(error)?;
        Ok(Self { owner: owner.to_string(), name: name.to_string() })
    }
}

/// `owner/name`, or `owner/*` for every repository of the owner (those created later too).
/// Compared case-insensitively, as GitHub does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoPattern {
    pub owner: String,
    /// `None` for `owner/*`.
    pub name: Option<String>,
}

impl RepoPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let refused = || format!("`{text}` is not owner/name or owner/*");
        match text.split_once('/') {
            Some((owner, "*")) => {
                check_part("owner", owner).map_err(|_| refused())?;
                Ok(Self { owner: owner.to_string(), name: None })
            }
            _ => text.parse::<RepoName>().map(Self::from).map_err(|_| refused()),
        }
    }

    /// Whether `repository` (`owner/name`) is one of this pattern's.
    pub fn matches(&self, repository: &str) -> bool {
        let Some((owner, name)) = repository.split_once('/') else { return false };
        owner.eq_ignore_ascii_case(&self.owner) && self.name.as_ref().is_none_or(|n| n.eq_ignore_ascii_case(name))
    }

    /// Whether every repository of `other` is one of this pattern's.
    pub fn covers(&self, other: &RepoPattern) -> bool {
        self.owner.eq_ignore_ascii_case(&other.owner)
            && match (&self.name, &other.name) {
                (None, _) => true,
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                (Some(_), None) => false,
            }
    }

    /// The one repository, unless this is `owner/*`.
    pub fn repo_name(&self) -> Option<RepoName> {
        self.name.as_ref().map(|name| RepoName { owner: self.owner.clone(), name: name.clone() })
    }

    /// The lowercase form: what subscriptions are keyed by.
    pub fn key(&self) -> String {
        self.to_string().to_ascii_lowercase()
    }
}

impl From<RepoName> for RepoPattern {
    fn from(repo: RepoName) -> Self {
        Self { owner: repo.owner, name: Some(repo.name) }
    }
}

impl fmt::Display for RepoPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name.as_deref().unwrap_or("*"))
    }
}

/// The repositories the bot may touch (`GITHUB_REPOS`, else `GITHUB_REPO`). Empty when neither is
/// set: deliveries then come from anywhere (as before routing), but no subscription or `repo`
/// option can name a repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoScope(pub Vec<RepoPattern>);

impl RepoScope {
    pub fn is_unset(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a delivery from `repository` may be acted on.
    pub fn admits_delivery(&self, repository: &str) -> bool {
        self.is_unset() || self.0.iter().any(|p| p.matches(repository))
    }

    /// Whether a subscription, a route or a `repo` option may name `pattern`.
    pub fn allows(&self, pattern: &RepoPattern) -> bool {
        self.0.iter().any(|p| p.covers(pattern))
    }

    /// The named repositories (not the `owner/*` entries), for autocomplete.
    pub fn repositories(&self) -> impl Iterator<Item = &RepoPattern> {
        self.0.iter()
    }
}

impl fmt::Display for RepoScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(list: &[&str]) -> RepoScope {
        RepoScope(list.iter().map(|p| RepoPattern::parse(p).unwrap()).collect())
    }

    #[test]
    fn repo_names_parse_and_print() {
        let repo: RepoName = " valine-ops/valine.rs_2 ".parse().unwrap();
        assert_eq!(repo, RepoName { owner: "valine-ops".into(), name: "valine.rs_2".into() });
        assert_eq!(repo.to_string(), "valine-ops/valine.rs_2");
        assert_eq!(repo.to_string().parse::<RepoName>().unwrap(), repo);
        for bad in ["valine", "a/b/c", "/b", "a/", "", "a b/c", "*/web", "acme/*"] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad}");
        }
        assert!(format!("a/{}", "b".repeat(101)).parse::<RepoName>().is_err());
        assert!(format!("a/{}", "b".repeat(100)).parse::<RepoName>().is_ok());
    }

    #[test]
    fn the_error_says_what_is_wrong() {
        let why = |text: &str| text.parse::<RepoName>().unwrap_err().to_string();
        assert_eq!(why("acme"), "`acme` is not owner/name: there is no `/` after the owner");
        assert_eq!(why(" /web"), "`/web` is not owner/name: the owner is empty");
        assert_eq!(why("acme/"), "`acme/` is not owner/name: the name is empty");
        assert!(why("a/b/c").ends_with("the name `b/c` has `/`; only letters, digits, `-`, `_` and `.` may be used"));
        assert!(why(&format!("{}/x", "o".repeat(101))).ends_with("the owner is longer than 100 characters"));
    }

    #[test]
    fn patterns_take_one_repository_or_all_of_an_owner() {
        let all = RepoPattern::parse(" acme/* ").unwrap();
        assert_eq!((all.owner.as_str(), all.name.as_deref()), ("acme", None));
        assert_eq!(all.repo_name(), None);
        assert_eq!(all.to_string(), "acme/*");
        let one = RepoPattern::parse("Acme/Web").unwrap();
        assert_eq!(one.repo_name(), Some(RepoName { owner: "Acme".into(), name: "Web".into() }));
        assert_eq!(one.key(), "acme/web");
        assert_eq!(RepoPattern::from("acme/web".parse::<RepoName>().unwrap()), RepoPattern::parse("acme/web").unwrap());
        assert!(all.covers(&one) && !one.covers(&all));
        assert!(all.matches("ACME/new") && one.matches("acme/web") && !one.matches("acme/webs"));
        assert_eq!(RepoPattern::parse("acme").unwrap_err(), "`acme` is not owner/name or owner/*");
    }

    #[test]
    fn scope_bounds_patterns_and_deliveries() {
        let s = scope(&["acme/*", "solo/app"]);
        assert!(s.allows(&RepoPattern::parse("acme/web").unwrap()));
        assert!(s.allows(&RepoPattern::parse("ACME/*").unwrap()));
        assert!(s.allows(&RepoPattern::parse("solo/app").unwrap()));
        assert!(!s.allows(&RepoPattern::parse("solo/*").unwrap()));
        assert!(!s.allows(&RepoPattern::parse("evil/app").unwrap()));
        assert!(s.admits_delivery("acme/new-one") && !s.admits_delivery("evil/app"));
        assert!(RepoScope::default().admits_delivery("anyone/at-all"));
        assert!(!RepoScope::default().allows(&RepoPattern::parse("a/b").unwrap()));
        for bad in ["acme", "acme/", "/web", "a/b/c", "a b/c", "*/web"] {
            assert!(RepoPattern::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(s.to_string(), "acme/*,solo/app");
    }
}
