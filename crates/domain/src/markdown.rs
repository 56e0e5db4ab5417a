//! Untrusted text in Discord messages. Names that come from GitHub (workflow, branch, job, step,
//! environment, commit message, actor) are chosen by whoever can push a workflow file or a
//! branch, so they are shown as text and never read as markdown: no masked link can point
//! somewhere else than it says, no mention can show (or ping), nothing can pass for the bot's own
//! headings or formatting.

use std::borrow::Cow;

/// Inserted after the `@` of `@everyone` and `@here`: invisible, and it breaks the mention.
const ZERO_WIDTH_SPACE: char = '\u{200B}';

/// What replaces a backtick inside a code span (U+02CB, MODIFIER LETTER GRAVE ACCENT): it looks
/// the same, and a code span cannot hold its own delimiter.
const GRAVE: char = '\u{02CB}';

/// Characters that are markdown wherever they stand: emphasis and underline (`*`, `_`), strike
/// (`~`), spoilers (`|`), code (`` ` ``), masked links (`[`, `]`), mentions, channels, timestamps
/// and custom emoji (`<`, `>`), and the escape character itself.
fn always_escaped(c: char) -> bool {
    matches!(c, '\\' | '*' | '_' | '~' | '|' | '`' | '[' | ']' | '<' | '>')
}

/// Characters that are markdown at the start of a line: headings (`#`, `##`, `###`), subtext
/// (`-#`) and lists (`-`).
fn escaped_at_start(c: char) -> bool {
    matches!(c, '#' | '-')
}

/// A line break or other control character, folded into a space: a name is one line, so nothing
/// in it can start a heading, quote or list line of its own.
fn folded(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

fn mention_at(rest: &str) -> bool {
    let b = rest.as_bytes();
    let starts = |word: &[u8]| b.get(..word.len()).is_some_and(|head| head.eq_ignore_ascii_case(word));
    starts(b"everyone") || starts(b"here")
}

/// `text` with Discord markdown neutralised, for message content, embed titles, descriptions and
/// field values:
/// - line breaks and other control characters become spaces;
/// - `\ * _ ~ | ` [ ] < >` get a backslash (Discord shows the character itself): no bold,
///   italics, underline, strike, spoiler, code, masked link (`[text](url)`), mention (`<@123>`,
///   `<@&123>`, `<#123>`), timestamp or custom emoji;
/// - `#` and `-` as the first character (after spaces) get a backslash: no heading, subtext or
///   list;
/// - `@everyone` and `@here` get a zero-width space after the `@`.
///
/// Borrowed when nothing needed changing. Not for inline code (see [`inline_code`]): Discord reads
/// no escapes there.
pub fn escape_markdown(text: &str) -> Cow<'_, str> {
    let start = text.len() - text.trim_start_matches(' ').len();
    let needs = text.char_indices().any(|(i, c)| {
        always_escaped(c)
            || folded(c)
            || (c == '@' && mention_at(&text[i + 1..]))
            || (i == start && escaped_at_start(c))
    });
    if !needs {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for (i, c) in text.char_indices() {
        if folded(c) {
            out.push(' ');
            continue;
        }
        if always_escaped(c) || (i == start && escaped_at_start(c)) {
            out.push('\\');
        }
        out.push(c);
        if c == '@' && mention_at(&text[i + 1..]) {
            out.push(ZERO_WIDTH_SPACE);
        }
    }
    Cow::Owned(out)
}

/// `text` as an inline code span, `` `like this` ``: backticks inside become `ˋ` (a code span
/// cannot hold its own delimiter, and Discord reads no escapes inside one), line breaks and
/// other control characters become spaces. Empty text gives the placeholder, unformatted.
pub fn inline_code(text: &str) -> String {
    if text.trim().is_empty() {
        return crate::message::PLACEHOLDER.to_string();
    }
    let inner: String = text
        .chars()
        .map(|c| match c {
            '`' => GRAVE,
            c if folded(c) => ' ',
            c => c,
        })
        .collect();
    format!("`{inner}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_neutralised() {
        let table = [
            ("[click](https://evil.example)", "\\[click\\](https://evil.example)"),
            ("@everyone", "@\u{200B}everyone"),
            ("@here please", "@\u{200B}here please"),
            ("ping @EVERYONE", "ping @\u{200B}EVERYONE"),
            ("<@123> <@!123> <@&456> <#789>", "\\<@123\\> \\<@!123\\> \\<@&456\\> \\<#789\\>"),
            ("<t:1700000000:R> <:emoji:123> </cmd:1>", "\\<t:1700000000:R\\> \\<:emoji:123\\> \\</cmd:1\\>"),
            ("# Heading", "\\# Heading"),
            ("## h2", "\\## h2"),
            ("### h3", "\\### h3"),
            ("-# subtext", "\\-# subtext"),
            ("- item", "\\- item"),
            ("  # indented", "  \\# indented"),
            ("> quote", "\\> quote"),
            (">>> block", "\\>\\>\\> block"),
            ("**bold** *it* _it_ __u__", "\\*\\*bold\\*\\* \\*it\\* \\_it\\_ \\_\\_u\\_\\_"),
            ("~~strike~~ ||spoiler||", "\\~\\~strike\\~\\~ \\|\\|spoiler\\|\\|"),
            ("`code` ```block```", "\\`code\\` \\`\\`\\`block\\`\\`\\`"),
            ("back\\slash \\*", "back\\\\slash \\\\\\*"),
            ("line\n# two\r\n-# three", "line # two  -# three"),
            ("sep\u{2028}# x", "sep # x"),
            ("fix #123 and a-b", "fix #123 and a-b"),
        ];
        for (input, want) in table {
            assert_eq!(escape_markdown(input), want, "{input:?}");
        }
    }

    #[test]
    fn ordinary_names_are_borrowed() {
        for name in [
            "CI",
            "main",
            "release/1.x",
            "deploy-prod",
            "Build (linux, x64)",
            "octocat",
            "acme/widget",
            "feature/#12",
            "user@example.com",
            "ワークフロー",
            "",
        ] {
            assert!(matches!(escape_markdown(name), Cow::Borrowed(_)), "{name:?}");
        }
    }

    #[test]
    fn code_spans_cannot_be_closed_from_inside() {
        assert_eq!(inline_code("3f1c9a7"), "`3f1c9a7`");
        assert_eq!(inline_code("a`[x](https://evil.example)`"), "`aˋ[x](https://evil.example)ˋ`");
        assert_eq!(inline_code("a\nb"), "`a b`");
        assert_eq!(inline_code(""), crate::message::PLACEHOLDER);
        assert_eq!(inline_code("``"), "`ˋˋ`");
    }
}
