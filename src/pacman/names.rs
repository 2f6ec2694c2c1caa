//! pacman's rule for names: a repository, an architecture, a package's file name, an IPNS key
//! or any other name pacxfer uses as one path component, and prints, must be one plain
//! component. One rule, checked wherever such a name comes in (a database, pacman's URL,
//! standard input, the command line).

/// Refuses a name that is to become one path component (a repository, an architecture, an
/// IPNS key, a file): `what` says what it names, for the message.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if is_plain_filename(name) {
        return Ok(());
    }
    let why = match name {
        "" => "it is empty",
        "." | ".." => "it names a directory",
        _ if name.contains(['/', '\\']) => "it holds a path separator",
        _ => "it holds a control or bidirectional character",
    };
    Err(format!(
        "{what} {:?} cannot be used: {why} (a name is one path component: not empty, not . or .., no / or \\, no control characters)",
        crate::ui::answer::one_line(name)
    ))
}

/// The one rule for a name that is used as one path component, and printed: not empty, not
/// `.` or `..`, no separator, no control or bidirectional character.
pub fn is_plain_filename(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\\')
        && !name.chars().any(crate::ui::shown::is_unsafe)
}
