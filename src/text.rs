//! Identifier text as people read it: characters that hide or reorder what a text shows, and
//! values whose letters come from several writing systems (look-alikes). Ground level: used by
//! order intake, staff accounts and the workspace alike.

/// Whether `c` hides or reorders what a text shows: a control character, a bidirectional
/// embedding, override, isolate or mark (Unicode's `Bidi_Control`), or a zero-width or other
/// invisible formatting character. None belongs in an identifier: `ref\u{202E}1-RP` shows as
/// another reference than it is.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// Why an identifier is refused for a hidden character, naming it (`U+202E`), if it has one.
pub fn hidden_character(value: &str) -> Option<String> {
    value.chars().find(|c| is_hidden(*c)).map(|c| {
        format!(
            "must not contain control, bidirectional-control or invisible characters (it contains U+{:04X})",
            u32::from(c)
        )
    })
}

/// The writing systems a text's letters come from, as far as look-alikes go: Latin, Greek,
/// Cyrillic, Armenian, Hebrew, Arabic, and the East Asian scripts as one (Japanese mixes them by
/// design). Digits, punctuation and spaces belong to none.
fn script_of(c: char) -> Option<&'static str> {
    if !c.is_alphabetic() {
        return None;
    }
    Some(match u32::from(c) {
        0x0041..=0x024F | 0x1E00..=0x1EFF | 0x2C60..=0x2C7F | 0xA720..=0xA7FF | 0xFF21..=0xFF5A => {
            "Latin"
        }
        0x0370..=0x03FF | 0x1F00..=0x1FFF => "Greek",
        0x0400..=0x052F | 0x1C80..=0x1C8F | 0x2DE0..=0x2DFF | 0xA640..=0xA69F => "Cyrillic",
        0x0530..=0x058F => "Armenian",
        0x0590..=0x05FF => "Hebrew",
        0x0600..=0x06FF | 0x0750..=0x077F | 0x08A0..=0x08FF => "Arabic",
        0x1100..=0x11FF
        | 0x2E80..=0x2FDF
        | 0x3040..=0x30FF
        | 0x3130..=0x318F
        | 0x31F0..=0x31FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xAC00..=0xD7AF
        | 0xF900..=0xFAFF
        | 0xFF66..=0xFFDC => "East Asian",
        _ => "other",
    })
}

/// Whether `value`'s letters come from more than one writing system (`pаypal` with a Cyrillic
/// `а`): the workspace marks such values, which may imitate another.
pub fn mixed_scripts(value: &str) -> bool {
    let mut seen = None;
    for script in value.chars().filter_map(script_of) {
        match seen {
            None => seen = Some(script),
            Some(s) if s != script => return true,
            Some(_) => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_scripts_are_told_apart() {
        assert!(mixed_scripts("p\u{0430}ypal")); // Cyrillic a
        assert!(mixed_scripts("Ρaris")); // Greek capital rho
        assert!(!mixed_scripts("Paris-75 (Île-de-France)"));
        assert!(!mixed_scripts("ДЕЛО-2026/7"));
        assert!(!mixed_scripts("東京カタカナ"));
        assert!(!mixed_scripts("2026-0042"));
    }

    #[test]
    fn hidden_characters_are_named() {
        assert_eq!(hidden_character("PR-2026-0042"), None);
        assert!(hidden_character("PR\u{202E}1").unwrap().contains("U+202E"));
        assert!(hidden_character("a\u{200B}b").unwrap().contains("U+200B"));
        assert!(hidden_character("a\tb").unwrap().contains("U+0009"));
    }
}
