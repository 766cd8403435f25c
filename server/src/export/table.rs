//! One table written row by row as CSV or as an Excel workbook, in bounded
//! memory: CSV leaves in chunks as it is written; a workbook keeps each
//! sheet in a temporary file (the writer's constant-memory mode) and starts a
//! new sheet when one is full.

use std::io::Write;
use std::path::Path;

use axum::body::Bytes;
use rust_xlsxwriter::{ExcelDateTime, Format as CellFormat, Workbook, XlsxError};
use time::{OffsetDateTime, UtcOffset};
use tokio::sync::mpsc;

use crate::error::{Error, Result};

/// Rows a sheet holds below its header (Excel's limit is 1,048,576 rows).
pub const SHEET_ROWS: u32 = 1_048_575;
/// CSV is handed on in chunks of about this size.
const CHUNK: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Xlsx,
    /// JSON-LD: the EPCIS document only.
    JsonLd,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::JsonLd => "jsonld",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::JsonLd => "application/ld+json",
        }
    }

    pub fn parse(s: &str) -> Result<Format> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "xlsx" | "excel" => Ok(Format::Xlsx),
            "jsonld" | "json" => Ok(Format::JsonLd),
            other => Err(Error::bad_input(
                "bad_format",
                format!("Choose csv or xlsx as the format (jsonld for EPCIS), not {other:?}."),
            )),
        }
    }
}

/// One cell's value.
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    Text(&'a str),
    Int(i64),
    Num(f64),
    Time(OffsetDateTime),
    Empty,
}

impl<'a> From<&'a str> for Cell<'a> {
    fn from(s: &'a str) -> Cell<'a> {
        Cell::Text(s)
    }
}

impl<'a> From<Option<&'a str>> for Cell<'a> {
    fn from(s: Option<&'a str>) -> Cell<'a> {
        s.map_or(Cell::Empty, Cell::Text)
    }
}

impl From<i64> for Cell<'_> {
    fn from(n: i64) -> Self {
        Cell::Int(n)
    }
}

impl From<OffsetDateTime> for Cell<'_> {
    fn from(t: OffsetDateTime) -> Self {
        Cell::Time(t)
    }
}

impl From<Option<OffsetDateTime>> for Cell<'_> {
    fn from(t: Option<OffsetDateTime>) -> Self {
        t.map_or(Cell::Empty, Cell::Time)
    }
}

/// Where the bytes go: a file, or the chunks of a download.
pub enum Out {
    File(std::fs::File),
    Chunks(mpsc::Sender<std::io::Result<Bytes>>),
}

impl Out {
    /// A download's chunks; the way to break it off; and the receiving end
    /// for the answer's body.
    pub fn chunks() -> (Out, Breaker, mpsc::Receiver<std::io::Result<Bytes>>) {
        let (tx, rx) = mpsc::channel(8);
        (Out::Chunks(tx.clone()), Breaker(tx), rx)
    }

    pub async fn send(&mut self, bytes: Vec<u8>) -> Result<()> {
        match self {
            Out::File(f) => f
                .write_all(&bytes)
                .map_err(|e| Error::Internal(format!("writing the export: {e}"))),
            // The downloader went away: stop the export.
            Out::Chunks(tx) => tx
                .send(Ok(Bytes::from(bytes)))
                .await
                .map_err(|_| Error::Internal("the download was cancelled".into())),
        }
    }
}

/// Breaks off a download that failed half-way, so the downloader sees a
/// broken transfer rather than a file cut short.
pub struct Breaker(mpsc::Sender<std::io::Result<Bytes>>);

impl Breaker {
    pub async fn fail(self, why: &str) {
        let _ = self
            .0
            .send(Err(std::io::Error::other(why.to_string())))
            .await;
    }
}

enum Sink {
    Csv(Box<csv::Writer<Vec<u8>>>),
    Xlsx(Box<Sheets>),
}

/// A workbook being written: the current sheet's number and its next row.
struct Sheets {
    book: Workbook,
    name: String,
    number: u32,
    row: u32,
    time_format: CellFormat,
    header_format: CellFormat,
}

fn xlsx(e: XlsxError) -> Error {
    Error::Internal(format!("writing the workbook: {e}"))
}

impl Sheets {
    fn sheet_name(&self) -> String {
        if self.number == 1 {
            self.name.clone()
        } else {
            format!("{} {}", self.name, self.number)
        }
    }

    /// Starts a sheet with the header row.
    fn start_sheet(&mut self, headers: &[&str]) -> Result<()> {
        let name = self.sheet_name();
        let header_format = self.header_format.clone();
        let sheet = self
            .book
            .add_worksheet_with_constant_memory()
            .map_err(xlsx)?;
        sheet.set_name(name).map_err(xlsx)?;
        for (col, h) in headers.iter().enumerate() {
            sheet
                .write_string_with_format(0, col as u16, *h, &header_format)
                .map_err(xlsx)?;
            sheet.set_column_width(col as u16, 18).map_err(xlsx)?;
        }
        sheet.set_freeze_panes(1, 0).map_err(xlsx)?;
        self.row = 1;
        Ok(())
    }
}

/// A table being written: its header first, then [`Table::row`] for each
/// row, then [`Table::finish`].
pub struct Table {
    sink: Sink,
    headers: Vec<&'static str>,
    offset: UtcOffset,
    out: Out,
    rows: u64,
}

impl Table {
    /// A table named `name` (the workbook's sheet name) with `headers`;
    /// times are written in the warehouse's `offset`.
    pub fn new(
        format: Format,
        name: &str,
        headers: &[&'static str],
        offset: UtcOffset,
        out: Out,
    ) -> Result<Table> {
        let sink = match format {
            Format::JsonLd => {
                return Err(Error::bad_input(
                    "bad_format",
                    format!("{name} comes as csv or xlsx, not as JSON-LD."),
                ))
            }
            Format::Csv => {
                let mut w = Box::new(csv_writer());
                w.write_record(headers)
                    .map_err(|e| Error::Internal(format!("writing the export: {e}")))?;
                Sink::Csv(w)
            }
            Format::Xlsx => {
                let mut sheets = Sheets {
                    book: Workbook::new(),
                    name: name.to_string(),
                    number: 1,
                    row: 1,
                    time_format: CellFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
                    header_format: CellFormat::new().set_bold(),
                };
                sheets.start_sheet(headers)?;
                Sink::Xlsx(Box::new(sheets))
            }
        };
        Ok(Table {
            sink,
            headers: headers.to_vec(),
            offset,
            out,
            rows: 0,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes one row; CSV goes on to the output as chunks fill.
    pub async fn row(&mut self, cells: &[Cell<'_>]) -> Result<()> {
        self.rows += 1;
        match &mut self.sink {
            Sink::Csv(w) => {
                for cell in cells {
                    let field = csv_field(*cell, self.offset);
                    w.write_field(field.as_bytes())
                        .map_err(|e| Error::Internal(format!("writing the export: {e}")))?;
                }
                w.write_record(None::<&[u8]>)
                    .map_err(|e| Error::Internal(format!("writing the export: {e}")))?;
                if w.get_ref().len() >= CHUNK {
                    let full = std::mem::replace(&mut **w, csv_writer());
                    let chunk = full
                        .into_inner()
                        .map_err(|e| Error::Internal(format!("writing the export: {e}")))?;
                    self.out.send(chunk).await?;
                }
            }
            Sink::Xlsx(s) => {
                if s.row > SHEET_ROWS {
                    s.number += 1;
                    s.start_sheet(&self.headers)?;
                }
                let row = s.row;
                let time_format = s.time_format.clone();
                let sheet = s.book.worksheets_mut().last_mut().ok_or_else(|| {
                    Error::Internal("the workbook has no sheet to write to".into())
                })?;
                for (col, cell) in cells.iter().enumerate() {
                    let col = col as u16;
                    match *cell {
                        Cell::Text(t) => sheet.write_string(row, col, t).map(drop),
                        Cell::Int(n) => sheet.write_number(row, col, n as f64).map(drop),
                        Cell::Num(n) => sheet.write_number(row, col, n).map(drop),
                        Cell::Time(t) => match excel_time(t, self.offset) {
                            Some(dt) => sheet
                                .write_datetime_with_format(row, col, &dt, &time_format)
                                .map(drop),
                            None => sheet.write_string(row, col, iso(t, self.offset)).map(drop),
                        },
                        Cell::Empty => Ok(()),
                    }
                    .map_err(xlsx)?;
                }
                s.row += 1;
            }
        }
        Ok(())
    }

    /// Ends the table: the rest of the CSV, or the whole workbook.
    pub async fn finish(mut self) -> Result<u64> {
        match self.sink {
            Sink::Csv(w) => {
                let rest = w
                    .into_inner()
                    .map_err(|e| Error::Internal(format!("writing the export: {e}")))?;
                if !rest.is_empty() {
                    self.out.send(rest).await?;
                }
            }
            Sink::Xlsx(mut s) => {
                // The workbook is zipped from its sheets' temporary files:
                // into its own file, or into a temporary one that is then
                // handed on in chunks.
                let book = &mut s.book;
                match &mut self.out {
                    Out::File(f) => {
                        tokio::task::block_in_place(|| book.save_to_writer(f)).map_err(xlsx)?;
                    }
                    Out::Chunks(_) => {
                        let mut file = tempfile::tempfile()
                            .map_err(|e| Error::Internal(format!("a temporary file: {e}")))?;
                        tokio::task::block_in_place(|| book.save_to_writer(&mut file))
                            .map_err(xlsx)?;
                        send_file(file, &mut self.out).await?;
                    }
                }
            }
        }
        Ok(self.rows)
    }
}

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::Writer::from_writer(Vec::with_capacity(CHUNK + 64 * 1024))
}

/// Sends a whole file, from its start, in chunks.
async fn send_file(mut file: std::fs::File, out: &mut Out) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::Internal(format!("reading the workbook back: {e}")))?;
    loop {
        let mut buf = vec![0; CHUNK];
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::Internal(format!("reading the workbook back: {e}")))?;
        if n == 0 {
            return Ok(());
        }
        buf.truncate(n);
        out.send(buf).await?;
    }
}

/// A CSV field: text as it is, but a leading `=`, `+`, `-`, `@`, tab or
/// carriage return gets a `'` so a spreadsheet does not run it as a formula.
fn csv_field(cell: Cell<'_>, offset: UtcOffset) -> String {
    match cell {
        Cell::Text(t) => {
            if t.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{t}")
            } else {
                t.to_string()
            }
        }
        Cell::Int(n) => n.to_string(),
        Cell::Num(n) => format!("{n}"),
        Cell::Time(t) => iso(t, offset),
        Cell::Empty => String::new(),
    }
}

/// A time as `2026-11-22 14:05:09` in the warehouse's offset.
pub fn iso(t: OffsetDateTime, offset: UtcOffset) -> String {
    let t = t.to_offset(offset);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn excel_time(t: OffsetDateTime, offset: UtcOffset) -> Option<ExcelDateTime> {
    let t = t.to_offset(offset);
    let year = u16::try_from(t.year()).ok()?;
    ExcelDateTime::from_ymd(year, u8::from(t.month()), t.day())
        .and_then(|d| d.and_hms(u16::from(t.hour()), t.minute(), t.second()))
        .ok()
}

/// Writes a table to a file at `path` (the command line's exports).
pub fn file_out(path: &Path) -> Result<Out> {
    std::fs::File::create(path).map(Out::File).map_err(|e| {
        Error::bad_input(
            "cannot_write",
            format!("{} cannot be written: {e}", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_never_start_a_formula() {
        let utc = UtcOffset::UTC;
        assert_eq!(csv_field(Cell::Text("=1+2"), utc), "'=1+2");
        assert_eq!(csv_field(Cell::Text("-5"), utc), "'-5");
        assert_eq!(csv_field(Cell::Text("@SUM(A1)"), utc), "'@SUM(A1)");
        assert_eq!(csv_field(Cell::Text("SB12345"), utc), "SB12345");
        assert_eq!(csv_field(Cell::Int(-5), utc), "-5");
        let t = time::macros::datetime!(2026-11-22 08:35:09 UTC);
        assert_eq!(
            csv_field(Cell::Time(t), time::macros::offset!(+05:30)),
            "2026-11-22 14:05:09"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn csv_leaves_in_chunks_and_whole() {
        let (out, breaker, mut rx) = Out::chunks();
        // Only the writer's end keeps the download open.
        drop(breaker);
        let collect = tokio::spawn(async move {
            let mut all = Vec::new();
            while let Some(chunk) = rx.recv().await {
                all.extend_from_slice(&chunk.expect("a chunk"));
            }
            all
        });
        let mut t =
            Table::new(Format::Csv, "Bags", &["code", "n"], UtcOffset::UTC, out).expect("table");
        for i in 0..50_000i64 {
            let code = format!("C{i:06}");
            t.row(&[Cell::Text(&code), Cell::Int(i)])
                .await
                .expect("row");
        }
        assert_eq!(t.finish().await.expect("finish"), 50_000);
        let all = collect.await.expect("collector");
        let text = String::from_utf8(all).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 50_001);
        assert_eq!(lines[0], "code,n");
        assert_eq!(lines[50_000], "C049999,49999");
    }
}
