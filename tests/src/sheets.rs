//! Spreadsheets made for the import tests: XLSX workbooks of text cells,
//! written with rust_xlsxwriter as a warehouse's own sheets would be.

/// An XLSX file with these sheets of text cells. A cell that reads as a
/// number (and does not start with 0) is written as a number, as Excel
/// would keep it; an empty one is left out.
pub fn xlsx(sheets: &[(&str, Vec<Vec<&str>>)]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    for (name, rows) in sheets {
        let sheet = book.add_worksheet();
        sheet.set_name(*name).expect("sheet name");
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                if cell.is_empty() {
                    continue;
                }
                match cell.parse::<f64>() {
                    Ok(n) if !cell.starts_with('0') => sheet.write_number(r as u32, c as u16, n),
                    _ => sheet.write_string(r as u32, c as u16, *cell),
                }
                .expect("cell");
            }
        }
    }
    book.save_to_buffer().expect("xlsx")
}
