//! Class names from model metadata. Ultralytics writes `names` as a Python dict rendering
//! (`{0: 'person', 1: "dog's toy"}`), not JSON, so this parses Python literals: a dict of
//! int keys to strings, or a list of strings. JSON forms of both parse too.

/// Parses a `names` value into a list indexed by class id (gaps become `class_<i>`).
pub fn parse_names(text: &str) -> Option<Vec<String>> {
    let tokens = tokenize(text.trim())?;
    let mut it = tokens.into_iter().peekable();
    let names = match it.next()? {
        Token::Open('{') => {
            let mut pairs: Vec<(usize, String)> = Vec::new();
            loop {
                match it.next()? {
                    Token::Close('}') => break,
                    Token::Int(k) => {
                        expect(&mut it, Token::Colon)?;
                        let Token::Str(v) = it.next()? else {
                            return None;
                        };
                        pairs.push((k, v));
                    }
                    Token::Str(k) => {
                        // JSON objects quote their keys: {"0": "person"}.
                        let k = k.trim().parse().ok()?;
                        expect(&mut it, Token::Colon)?;
                        let Token::Str(v) = it.next()? else {
                            return None;
                        };
                        pairs.push((k, v));
                    }
                    _ => return None,
                }
                match it.next()? {
                    Token::Comma => continue,
                    Token::Close('}') => break,
                    _ => return None,
                }
            }
            let len = pairs.iter().map(|(k, _)| k + 1).max().unwrap_or(0);
            if len > 100_000 {
                return None;
            }
            let mut names: Vec<String> = (0..len).map(|i| format!("class_{i}")).collect();
            for (k, v) in pairs {
                names[k] = v;
            }
            names
        }
        Token::Open('[') => string_list(&mut it)?,
        _ => return None,
    };
    if it.next().is_some() || names.is_empty() {
        return None;
    }
    Some(names)
}

/// Parses Ultralytics' `kpt_names` (`{0: ['nose', 'left_eye'], 1: [...]}`: per class id, its
/// keypoints' names in order) into a list indexed by class id (a class without names gets
/// an empty list).
pub fn parse_keypoint_names(text: &str) -> Option<Vec<Vec<String>>> {
    let mut it = tokenize(text.trim())?.into_iter().peekable();
    expect(&mut it, Token::Open('{'))?;
    let mut pairs: Vec<(usize, Vec<String>)> = Vec::new();
    loop {
        let key = match it.next()? {
            Token::Close('}') => break,
            Token::Int(k) => k,
            Token::Str(k) => k.trim().parse().ok()?,
            _ => return None,
        };
        expect(&mut it, Token::Colon)?;
        expect(&mut it, Token::Open('['))?;
        pairs.push((key, string_list(&mut it)?));
        match it.next()? {
            Token::Comma => continue,
            Token::Close('}') => break,
            _ => return None,
        }
    }
    let len = pairs.iter().map(|(k, _)| k + 1).max().unwrap_or(0);
    if it.next().is_some() || len == 0 || len > 100_000 {
        return None;
    }
    let mut out = vec![Vec::new(); len];
    for (k, names) in pairs {
        out[k] = names;
    }
    Some(out)
}

/// The strings of a list whose `[` has been read, through its `]`.
fn string_list(it: &mut impl Iterator<Item = Token>) -> Option<Vec<String>> {
    let mut names = Vec::new();
    loop {
        match it.next()? {
            Token::Close(']') => break,
            Token::Str(v) => names.push(v),
            _ => return None,
        }
        match it.next()? {
            Token::Comma => continue,
            Token::Close(']') => break,
            _ => return None,
        }
    }
    Some(names)
}

#[derive(Debug, PartialEq)]
enum Token {
    Open(char),
    Close(char),
    Colon,
    Comma,
    Int(usize),
    Str(String),
}

fn expect(it: &mut impl Iterator<Item = Token>, want: Token) -> Option<()> {
    (it.next()? == want).then_some(())
}

fn tokenize(text: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '{' | '[' => tokens.push(Token::Open(c)),
            '}' | ']' => tokens.push(Token::Close(c)),
            ':' => tokens.push(Token::Colon),
            ',' => tokens.push(Token::Comma),
            '0'..='9' => {
                let mut n = c.to_digit(10)? as usize;
                while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                    n = n.checked_mul(10)?.checked_add(d as usize)?;
                    chars.next();
                }
                tokens.push(Token::Int(n));
            }
            '\'' | '"' => {
                let quote = c;
                let mut s = String::new();
                loop {
                    match chars.next()? {
                        '\\' => match chars.next()? {
                            'n' => s.push('\n'),
                            't' => s.push('\t'),
                            other => s.push(other),
                        },
                        ch if ch == quote => break,
                        ch => s.push(ch),
                    }
                }
                tokens.push(Token::Str(s));
            }
            _ => return None,
        }
    }
    Some(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keypoint_names_per_class() {
        assert_eq!(
            parse_keypoint_names("{0: ['nose', 'left_eye'], 2: [\"tip\"]}"),
            Some(vec![
                vec!["nose".to_string(), "left_eye".into()],
                vec![],
                vec!["tip".to_string()]
            ])
        );
        assert_eq!(parse_keypoint_names("{0: 'nose'}"), None);
        assert_eq!(parse_keypoint_names("{}"), None);
    }

    #[test]
    fn ultralytics_dict() {
        assert_eq!(
            parse_names("{0: 'circle', 1: 'square', 2: 'triangle'}"),
            Some(vec!["circle".to_string(), "square".into(), "triangle".into()])
        );
    }

    #[test]
    fn quotes_commas_and_escapes_inside_names() {
        assert_eq!(
            parse_names(r#"{0: "dog's toy", 1: 'a, b', 2: 'it\'s'}"#),
            Some(vec!["dog's toy".to_string(), "a, b".into(), "it's".into()])
        );
    }

    #[test]
    fn json_forms() {
        assert_eq!(parse_names(r#"["a", "b"]"#), Some(vec!["a".to_string(), "b".into()]));
        assert_eq!(
            parse_names(r#"{"0": "a", "1": "b"}"#),
            Some(vec!["a".to_string(), "b".into()])
        );
    }

    #[test]
    fn gaps_get_placeholder_names() {
        assert_eq!(
            parse_names("{0: 'a', 2: 'c'}"),
            Some(vec!["a".to_string(), "class_1".into(), "c".into()])
        );
    }

    #[test]
    fn garbage_is_none() {
        for text in [
            "",
            "{",
            "{0: }",
            "{0: 'a' 1: 'b'}",
            "[1, 2]",
            "{0: 'a'} trailing",
            "hello",
            "{99999999999999999999: 'a'}",
            "{}",
        ] {
            assert_eq!(parse_names(text), None, "{text}");
        }
    }
}
