//! Git ref names a command sends to a workflow (`/deploy-client ref:`): what `git
//! check-ref-format` accepts (a one-level name such as `main` included), at most 200 characters,
//! ASCII, and nothing a shell or a workflow template would read as code. A commit SHA passes as
//! it is a valid name. The ref is a value, never code.

/// The longest ref accepted, in characters.
pub const MAX_REF_LEN: usize = 200;

/// Why a ref was refused. The text is shown to the caller and safe to audit: it names a class or
/// a character of a fixed set, never the ref itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RefRejection {
    #[error("the ref is empty")]
    Empty,
    #[error("the ref is longer than 200 characters")]
    TooLong,
    #[error("the ref holds white space")]
    Whitespace,
    #[error("the ref holds a control character")]
    Control,
    #[error("the ref holds a character outside ASCII")]
    NotAscii,
    #[error("the ref holds {}, which git does not allow in a ref name", shown(*.0))]
    Forbidden(char),
    #[error("the ref holds {}, which a shell reads as code", shown(*.0))]
    Shell(char),
    #[error("the ref holds `..`")]
    DoubleDot,
    #[error("the ref holds `@{{`")]
    AtBrace,
    #[error("the ref is `@` alone")]
    At,
    #[error("the ref starts with `-`")]
    LeadingDash,
    #[error("the ref starts or ends with `/`, or holds `//`")]
    Slash,
    #[error("a part of the ref starts with `.`")]
    DotPart,
    #[error("a part of the ref ends with `.lock`")]
    LockPart,
    #[error("the ref ends with `.`")]
    TrailingDot,
}

/// A character as a reply shows it: in inline code, except a backtick, which cannot stand there.
fn shown(c: char) -> String {
    if c == '`' { "a backtick".to_string() } else { format!("`{c}`") }
}

/// Checks a ref name: `git check-ref-format --allow-onelevel` rules, plus at most
/// [`MAX_REF_LEN`] characters, ASCII only, no leading `-` (a git option), and none of
/// `$ ; ' " \` | & < >`.
pub fn check_ref_name(name: &str) -> Result<(), RefRejection> {
    if name.is_empty() {
        return Err(RefRejection::Empty);
    }
    if name.chars().count() > MAX_REF_LEN {
        return Err(RefRejection::TooLong);
    }
    for c in name.chars() {
        let refused = match c {
            ' ' => RefRejection::Whitespace,
            c if c.is_ascii_control() => RefRejection::Control,
            c if !c.is_ascii() => RefRejection::NotAscii,
            '~' | '^' | ':' | '?' | '*' | '[' | '\\' => RefRejection::Forbidden(c),
            '$' | ';' | '\'' | '"' | '`' | '|' | '&' | '<' | '>' => RefRejection::Shell(c),
            _ => continue,
        };
        return Err(refused);
    }
    if name == "@" {
        return Err(RefRejection::At);
    }
    if name.contains("@{") {
        return Err(RefRejection::AtBrace);
    }
    if name.contains("..") {
        return Err(RefRejection::DoubleDot);
    }
    if name.starts_with('-') {
        return Err(RefRejection::LeadingDash);
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err(RefRejection::Slash);
    }
    for part in name.split('/') {
        if part.starts_with('.') {
            return Err(RefRejection::DotPart);
        }
        if part.ends_with(".lock") {
            return Err(RefRejection::LockPart);
        }
    }
    if name.ends_with('.') {
        return Err(RefRejection::TrailingDot);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_check_ref_format_table() {
        let ok = [
            "main",
            "release/1.x",
            "v1.2.3",
            "refs/heads/feature/x_y-z",
            "3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293",
            "a1b2c3d",
            "user@host",
            "a.b",
            "x.locked",
            "dependabot/npm_and_yarn/lodash-4.17.21",
            "feature/#123+fix=1,2(3)!",
        ];
        for name in ok {
            assert_eq!(check_ref_name(name), Ok(()), "{name:?}");
        }
        assert_eq!(check_ref_name(&"a".repeat(MAX_REF_LEN)), Ok(()));
        let refused: [(&str, RefRejection); 31] = [
            ("", RefRejection::Empty),
            ("has space", RefRejection::Whitespace),
            ("tab\there", RefRejection::Control),
            ("line\nbreak", RefRejection::Control),
            ("bell\u{7}", RefRejection::Control),
            ("del\u{7f}", RefRejection::Control),
            ("branché", RefRejection::NotAscii),
            ("a~1", RefRejection::Forbidden('~')),
            ("a^2", RefRejection::Forbidden('^')),
            ("a:b", RefRejection::Forbidden(':')),
            ("a?", RefRejection::Forbidden('?')),
            ("a*", RefRejection::Forbidden('*')),
            ("a[b", RefRejection::Forbidden('[')),
            ("a\\b", RefRejection::Forbidden('\\')),
            ("$(id)", RefRejection::Shell('$')),
            ("main;id", RefRejection::Shell(';')),
            ("main`id`", RefRejection::Shell('`')),
            ("a|b", RefRejection::Shell('|')),
            ("a&&b", RefRejection::Shell('&')),
            ("it's", RefRejection::Shell('\'')),
            ("@", RefRejection::At),
            ("a@{1}", RefRejection::AtBrace),
            ("a..b", RefRejection::DoubleDot),
            ("-x", RefRejection::LeadingDash),
            ("/main", RefRejection::Slash),
            ("main/", RefRejection::Slash),
            ("a//b", RefRejection::Slash),
            (".hidden", RefRejection::DotPart),
            ("feature/.x", RefRejection::DotPart),
            ("release/x.lock/y", RefRejection::LockPart),
            ("x.", RefRejection::TrailingDot),
        ];
        for (name, want) in refused {
            assert_eq!(check_ref_name(name), Err(want), "{name:?}");
        }
        assert_eq!(check_ref_name("x.lock"), Err(RefRejection::LockPart));
        assert_eq!(check_ref_name(&"a".repeat(MAX_REF_LEN + 1)), Err(RefRejection::TooLong));
        assert_eq!(check_ref_name(&"é".repeat(MAX_REF_LEN + 1)), Err(RefRejection::TooLong));
    }

    #[test]
    fn reasons_read_well_in_a_reply() {
        assert_eq!(RefRejection::Shell('`').to_string(), "the ref holds a backtick, which a shell reads as code");
        assert_eq!(RefRejection::Shell('$').to_string(), "the ref holds `$`, which a shell reads as code");
        assert_eq!(
            RefRejection::Forbidden(':').to_string(),
            "the ref holds `:`, which git does not allow in a ref name"
        );
        assert_eq!(RefRejection::AtBrace.to_string(), "the ref holds `@{`");
    }
}
