//! READMEs: CommonMark (pulldown-cmark) rendered to HTML, then sanitized by ammonia, which
//! parses the HTML as a browser would (html5ever) and keeps only an allow-list of elements and
//! attributes: no script, iframe, style, event handler or `javascript:` URL survives, and
//! every link opens without handing the page to its target (`rel="noopener noreferrer"`).

use std::collections::HashSet;

use maud::{html, Markup, PreEscaped};
use pulldown_cmark::{Options, Parser};

/// READMEs past this are cut (at a line end where possible): a page must render in
/// milliseconds whatever was published, and nobody reads the 5th megabyte of a README.
pub const MAX_README_BYTES: usize = 256 * 1024;

/// The README as safe HTML, with a note when it was cut.
pub fn render(markdown: &str) -> Markup {
    let (text, truncated) = truncate(markdown, MAX_README_BYTES);
    let mut raw = String::with_capacity(text.len() * 3 / 2);
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    pulldown_cmark::html::push_html(&mut raw, Parser::new_ext(text, options));
    let clean = sanitize(&raw);
    html! {
        (PreEscaped(clean))
        @if truncated {
            p.muted { "This README is longer than " (MAX_README_BYTES / 1024) " KiB; the rest is not shown." }
        }
    }
}

fn sanitize(raw: &str) -> String {
    let schemes: HashSet<&str> = ["http", "https", "mailto"].into_iter().collect();
    ammonia::Builder::default()
        .url_schemes(schemes)
        .link_rel(Some("noopener noreferrer"))
        .clean(raw)
        .to_string()
}

/// At most `max` bytes of `text`, cut at the last line end before the limit (else at a
/// character boundary), and whether anything was cut.
fn truncate(text: &str, max: usize) -> (&str, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = &text[..end];
    match cut.rfind('\n') {
        Some(line_end) if line_end > max / 2 => (&cut[..line_end], true),
        _ => (cut, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(markdown: &str) -> String {
        render(markdown).into_string()
    }

    #[test]
    fn markdown_becomes_html() {
        let out =
            rendered("# Title\n\nSome *text* and `code`.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(out.contains("<h1>Title</h1>"), "{out}");
        assert!(out.contains("<em>text</em>"), "{out}");
        assert!(out.contains("<table>"), "{out}");
    }

    #[test]
    fn script_tags_do_not_survive() {
        let out = rendered("hello <script>alert(1)</script>\n\n<script src=\"//evil\"></script>");
        assert!(!out.to_lowercase().contains("<script"), "{out}");
        assert!(!out.contains("alert(1)</script"), "{out}");
    }

    #[test]
    fn event_handlers_do_not_survive() {
        let out = rendered("<img src=\"x.png\" onerror=\"alert(1)\">\n\n<a href=\"/x\" onclick=\"steal()\">x</a>\n\n<div onmouseover=alert(1)>hover</div>");
        assert!(!out.to_lowercase().contains("onerror"), "{out}");
        assert!(!out.to_lowercase().contains("onclick"), "{out}");
        assert!(!out.to_lowercase().contains("onmouseover"), "{out}");
    }

    #[test]
    fn javascript_urls_do_not_survive() {
        let out = rendered(
            "[click](javascript:alert(1)) <a href=\"JaVaScRiPt:alert(2)\">b</a> \
             <a href=\"  javascript:alert(3)\">c</a> [d](data:text/html,<script>x</script>)",
        );
        let lower = out.to_lowercase();
        assert!(!lower.contains("javascript:"), "{out}");
        assert!(!lower.contains("data:text/html"), "{out}");
    }

    #[test]
    fn iframes_objects_and_styles_do_not_survive() {
        let out = rendered("<iframe src=\"https://evil\"></iframe><object data=x></object><embed src=x><style>body{}</style><form action=x><input></form>");
        let lower = out.to_lowercase();
        for tag in ["<iframe", "<object", "<embed", "<style", "<form", "<input"] {
            assert!(!lower.contains(tag), "{tag} in {out}");
        }
    }

    #[test]
    fn unclosed_html_is_closed() {
        let out = rendered("<div><b>bold <i>italic\n\n<table><tr><td>cell");
        // The sanitizer's parser balances the tree: nothing can leak past the README.
        assert_eq!(
            out.matches("<div").count(),
            out.matches("</div>").count(),
            "{out}"
        );
        assert_eq!(
            out.matches("<b>").count(),
            out.matches("</b>").count(),
            "{out}"
        );
    }

    #[test]
    fn links_get_noopener() {
        let out = rendered("[site](https://example.com)");
        assert!(out.contains("href=\"https://example.com\""), "{out}");
        assert!(out.contains("rel=\"noopener noreferrer\""), "{out}");
    }

    #[test]
    fn five_megabytes_of_markdown_are_cut() {
        let line = "* item with **bold** and [a link](https://example.com) <b>x\n";
        let huge = line.repeat(5 * 1024 * 1024 / line.len() + 1);
        assert!(huge.len() > 5 * 1024 * 1024);
        let started = std::time::Instant::now();
        let out = rendered(&huge);
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        assert!(out.contains("the rest is not shown"));
        // Bounded: the output is a small multiple of the kept input.
        assert!(out.len() < MAX_README_BYTES * 4, "{} bytes", out.len());
    }

    #[test]
    fn pathological_nesting_finishes() {
        let deep = "> ".repeat(10_000) + "quote\n" + &"[".repeat(50_000) + &"*a".repeat(50_000);
        let out = rendered(&deep);
        assert!(!out.is_empty());
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        let text = "é".repeat(10);
        let (cut, truncated) = truncate(&text, 5);
        assert!(truncated);
        assert_eq!(cut, "éé");
        assert_eq!(truncate("short", 100), ("short", false));
    }
}
