//! Text helpers every layer uses. A leaf: it imports nothing of the crate, so no layer reaches
//! back up through it.

/// Folds a message onto one line, so that log collectors see one record per failure.
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_fold_to_one_line() {
        assert_eq!(one_line("a\n  b\tc "), "a b c");
    }
}
