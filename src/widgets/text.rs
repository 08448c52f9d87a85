//! Text helpers the widgets share.

/// Wrap `text` to `width` columns (characters) at spaces, keeping the text's own spacing and
/// indentation and its blank lines; a word longer than a line is cut.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    for para in text.split('\n') {
        let mut rest: Vec<char> = para.chars().collect();
        while rest.len() > width {
            // Break at the last space that leaves something on this line.
            let cut = rest[..=width].iter().rposition(|c| *c == ' ').filter(|i| *i > 0);
            match cut {
                Some(i) => {
                    out.push(rest[..i].iter().collect());
                    rest.drain(..=i);
                }
                None => {
                    out.push(rest[..width].iter().collect());
                    rest.drain(..width);
                }
            }
        }
        out.push(rest.into_iter().collect());
    }
    out
}
