//! Tables as SkyPilot prints them: no borders, left-aligned columns two
//! spaces apart, sized to their widest cell (in terminal columns, so names
//! in any script line up).

use comfy_table::{ContentArrangement, Table, presets::NOTHING};

/// Renders `rows` under `headers`, without trailing spaces or a final newline.
pub fn render<S: AsRef<str>>(headers: &[&str], rows: impl IntoIterator<Item = Vec<S>>) -> String {
    let mut table = Table::new();
    table.load_style(NOTHING).set_content_arrangement(ContentArrangement::Disabled).set_header(headers.to_vec());
    for row in rows {
        table.add_row(row.iter().map(AsRef::as_ref).collect::<Vec<&str>>());
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table.to_string().lines().map(str::trim_end).collect::<Vec<_>>().join("\n")
}

/// Wraps `title` in bold cyan when `color` is set, as SkyPilot's section titles.
pub fn title(title: &str, color: bool) -> String {
    if color { format!("\x1b[1;36m{title}\x1b[0m") } else { title.to_string() }
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_two_spaces_apart_and_unicode_aware() {
        let t = super::render(&["GPU", "REGION"], vec![vec!["H100", "Hafnarfjarðarkaupstaður"], vec!["A", "x"]]);
        assert_eq!(t, "GPU   REGION\nH100  Hafnarfjarðarkaupstaður\nA     x");
    }
}
