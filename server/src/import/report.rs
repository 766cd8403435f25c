//! The result files of an import: one row per input row (sheet, row number,
//! code, outcome, message) as CSV and as XLSX with a summary sheet first.
//! The XLSX rows sheets are written in rust_xlsxwriter's constant-memory mode
//! (rows go to a temporary file as they come), so a file of 1,800,000 rows
//! costs little memory; a sheet holds at most 1,000,000 rows, then the next begins.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::{RowOutcome, Summary};

/// Rows per XLSX sheet (Excel's own limit is 1,048,576).
const ROWS_PER_SHEET: u32 = 1_000_000;

/// Where an import's result files are kept.
pub fn paths(dir: &Path, import_id: i64) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("import-{import_id}-result.csv")),
        dir.join(format!("import-{import_id}-result.xlsx")),
    )
}

/// The result files being written.
pub struct ResultFiles {
    csv: csv::Writer<BufWriter<File>>,
    book: Workbook,
    bold: Format,
    /// The rows sheet being written (its index) and the rows in it so far.
    sheet: usize,
    rows_in_sheet: u32,
    rows_sheets: u32,
    xlsx_path: PathBuf,
}

fn xlsx_error(e: XlsxError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

const HEADER: [&str; 5] = ["sheet", "row", "code", "outcome", "message"];

impl ResultFiles {
    pub fn create(dir: &Path, import_id: i64) -> std::io::Result<ResultFiles> {
        std::fs::create_dir_all(dir)?;
        let (csv_path, xlsx_path) = paths(dir, import_id);
        let mut csv = csv::Writer::from_writer(BufWriter::new(File::create(&csv_path)?));
        csv.write_record(HEADER)?;
        let mut book = Workbook::new();
        book.set_tempdir(dir).map_err(xlsx_error)?;
        book.add_worksheet()
            .set_name("Summary")
            .map_err(xlsx_error)?;
        let mut files = ResultFiles {
            csv,
            book,
            bold: Format::new().set_bold(),
            sheet: 0,
            rows_in_sheet: 0,
            rows_sheets: 0,
            xlsx_path,
        };
        files.next_sheet().map_err(xlsx_error)?;
        Ok(files)
    }

    fn next_sheet(&mut self) -> Result<(), XlsxError> {
        self.rows_sheets += 1;
        let name = if self.rows_sheets == 1 {
            "Rows".to_string()
        } else {
            format!("Rows {}", self.rows_sheets)
        };
        let sheet = self.book.add_worksheet_with_constant_memory()?;
        sheet.set_name(name)?;
        sheet.set_column_width(0, 16)?;
        sheet.set_column_width(2, 18)?;
        sheet.set_column_width(3, 14)?;
        sheet.set_column_width(4, 70)?;
        sheet.set_freeze_panes(1, 0)?;
        for (i, h) in HEADER.iter().enumerate() {
            sheet.write_string_with_format(0, i as u16, *h, &self.bold)?;
        }
        self.sheet = self.rows_sheets as usize;
        self.rows_in_sheet = 0;
        Ok(())
    }

    /// Adds one row's outcome to both files.
    pub fn add(&mut self, o: &RowOutcome) -> std::io::Result<()> {
        let number = o.at.number.to_string();
        self.csv.write_record([
            &*o.at.sheet,
            number.as_str(),
            o.code.as_str(),
            o.outcome.as_str(),
            o.message.as_str(),
        ])?;
        if self.rows_in_sheet == ROWS_PER_SHEET {
            self.next_sheet().map_err(xlsx_error)?;
        }
        self.rows_in_sheet += 1;
        let r = self.rows_in_sheet;
        let sheet = self
            .book
            .worksheet_from_index(self.sheet)
            .map_err(xlsx_error)?;
        (|| {
            sheet.write_string(r, 0, &*o.at.sheet)?;
            sheet.write_number(r, 1, f64::from(o.at.number))?;
            sheet.write_string(r, 2, &o.code)?;
            sheet.write_string(r, 3, o.outcome.as_str())?;
            sheet.write_string(r, 4, &o.message)?;
            Ok::<_, XlsxError>(())
        })()
        .map_err(xlsx_error)
    }

    /// Writes the summary sheet and closes both files.
    pub fn finish(mut self, summary: &Summary) -> std::io::Result<()> {
        self.csv.flush()?;
        let bold = self.bold.clone();
        let sheet = self.book.worksheet_from_index(0).map_err(xlsx_error)?;
        let lines: Vec<(&str, String)> = vec![
            ("Import", summary.id.to_string()),
            ("File", summary.file_name.clone()),
            ("SHA-256", summary.sha256.clone()),
            ("Layout", summary.kind.as_str().to_string()),
            (
                "By",
                summary.by.clone().unwrap_or_else(|| "command line".into()),
            ),
            (
                "Mode",
                if summary.dry_run {
                    "preview (nothing was changed)".into()
                } else if summary.all_or_nothing {
                    "all or nothing".into()
                } else {
                    "row by row".into()
                },
            ),
            ("State", summary.state.clone()),
            ("Rows", summary.rows.to_string()),
            ("Created", summary.counts.created.to_string()),
            ("Linked", summary.counts.linked.to_string()),
            ("Already there", summary.counts.already_there.to_string()),
            ("Refused", summary.counts.refused.to_string()),
        ];
        (|| {
            sheet.set_column_width(0, 16)?;
            sheet.set_column_width(1, 70)?;
            for (i, (name, value)) in lines.iter().enumerate() {
                sheet.write_string_with_format(i as u32, 0, *name, &bold)?;
                sheet.write_string(i as u32, 1, value)?;
            }
            Ok::<_, XlsxError>(())
        })()
        .map_err(xlsx_error)?;
        let path = self.xlsx_path.clone();
        self.book.save(&path).map_err(xlsx_error)
    }
}
