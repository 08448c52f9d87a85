//! Themes: the built-in `themes/*.toml` (embedded), a user theme by path or name, and
//! monochrome when `NO_COLOR` is set (https://no-color.org: present and not empty).

use std::path::{Path, PathBuf};

use crate::widgets::palette::Palette;

/// The built-in themes, in the order `t` cycles them.
pub const BUILTIN: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("high-contrast", include_str!("../../themes/high-contrast.toml")),
];

/// The themes `t` cycles and the one in use.
#[derive(Debug, Clone)]
pub struct Themes {
    pub list: Vec<Palette>,
    pub current: usize,
}

impl Themes {
    pub fn palette(&self) -> &Palette {
        // `list` is never empty (see `load`).
        &self.list[self.current.min(self.list.len().saturating_sub(1))]
    }

    pub fn cycle(&mut self) -> &Palette {
        if !self.list.is_empty() {
            self.current = (self.current + 1) % self.list.len();
        }
        self.palette()
    }

    /// Only the monochrome palette (for tests and `NO_COLOR`).
    pub fn monochrome() -> Self {
        Self { list: vec![Palette::monochrome()], current: 0 }
    }
}

/// The built-in palettes.
pub fn builtin() -> Result<Vec<Palette>, String> {
    BUILTIN.iter().map(|(name, text)| Palette::parse(text, &format!("themes/{name}.toml"))).collect()
}

/// Is `NO_COLOR` set (to anything but the empty string)?
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Where a theme that is not built in may be: the name as a path, `themes/<name>.toml` here,
/// then the user config folder's `themes/<name>.toml`.
fn candidates(name: &str) -> Vec<PathBuf> {
    let mut c = vec![PathBuf::from(name), Path::new("themes").join(format!("{name}.toml"))];
    if let Some(dir) = crate::config::user_config_path().and_then(|p| p.parent().map(Path::to_path_buf)) {
        c.push(dir.join("themes").join(format!("{name}.toml")));
    }
    c
}

/// The themes for a run: `name` (config `ui.theme` or `--theme`) selected; a user theme joins
/// the cycle after the built-in ones. With `no_color`, only monochrome.
pub fn load(name: &str, no_color: bool) -> Result<Themes, String> {
    if no_color {
        return Ok(Themes::monochrome());
    }
    let mut list = builtin()?;
    if let Some(i) = list.iter().position(|p| p.name == name) {
        return Ok(Themes { list, current: i });
    }
    let Some(path) = candidates(name).into_iter().find(|p| p.is_file()) else {
        let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        return Err(format!("unknown theme {name:?}: use {} or the path of a theme file", names.join(", ")));
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let p = Palette::parse(&text, &path.display().to_string())?;
    list.push(p);
    let current = list.len() - 1;
    Ok(Themes { list, current })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_theme_parses_with_every_slot() {
        let list = builtin().expect("built-in themes parse");
        let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["dark", "light", "high-contrast"]);
        // The files on disk are the embedded ones.
        for (name, text) in BUILTIN {
            let on_disk = std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("themes").join(format!("{name}.toml")),
            )
            .expect("theme file");
            assert_eq!(&on_disk, text);
        }
    }

    #[test]
    fn a_missing_slot_or_bad_colour_is_named() {
        let dark = BUILTIN[0].1;
        let e = Palette::parse(&dark.replace("p99 = \"#f7768e\"\n", ""), "t.toml").expect_err("missing slot");
        assert!(e.contains("p99"), "{e}");
        let e = Palette::parse(&dark.replace("\"#9ece6a\"", "\"greenish\""), "t.toml").expect_err("bad colour");
        assert!(e.starts_with("t.toml:") && e.contains("greenish"), "{e}");
        let e = Palette::parse(&format!("{dark}\nsparkle = true\n"), "t.toml").expect_err("unknown key");
        assert!(e.contains("sparkle"), "{e}");
    }

    #[test]
    fn selection_by_name_path_and_no_color() {
        let t = load("light", false).expect("built in");
        assert_eq!(t.palette().name, "light");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mine.toml");
        std::fs::write(&path, BUILTIN[2].1.replace("name = \"high-contrast\"", "name = \"mine\"")).expect("write");
        let mut t = load(&path.display().to_string(), false).expect("by path");
        assert_eq!((t.palette().name.as_str(), t.list.len()), ("mine", 4));
        assert_eq!(t.cycle().name, "dark");
        let e = load("no-such-theme", false).expect_err("unknown");
        assert!(e.contains("dark, light, high-contrast"), "{e}");
        let t = load("dark", true).expect("mono");
        assert!(t.palette().mono);
    }
}
