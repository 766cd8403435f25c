//! Reading an import file as rows of text cells: CSV with the `csv` crate,
//! XLSX/XLSM with `calamine`. The kind of file is told from its first bytes,
//! never from its name. Both readers stream: CSV record by record, XLSX cell
//! by cell through calamine's worksheet cell reader (only the workbook's
//! shared-strings table is held whole), and rows go out in small groups over a
//! bounded channel, so memory does not grow with the file.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use calamine::{DataRef, DataType, Reader, Xlsx};

use super::plan::{Row, RowRef};

/// Rows sent together over the channel.
pub const ROWS_PER_MESSAGE: usize = 1_000;
/// Columns kept per row: the layouts use at most five.
const MAX_COLUMNS: usize = 16;

/// A file that cannot be read, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub String);

fn err(message: impl Into<String>) -> ReadError {
    ReadError(message.into())
}

/// What a file is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Csv,
    Xlsx,
}

/// Tells CSV from XLSX/XLSM and refuses anything else in plain words.
pub fn sniff(path: &Path) -> Result<FileType, ReadError> {
    let mut file = File::open(path).map_err(|e| err(format!("The file cannot be opened: {e}.")))?;
    let mut head = vec![0u8; 8192];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(err(format!("The file cannot be read: {e}."))),
        }
    }
    head.truncate(n);
    sniff_bytes(&head)
}

/// [`sniff`] on the first bytes of a file.
pub fn sniff_bytes(head: &[u8]) -> Result<FileType, ReadError> {
    if head.is_empty() {
        return Err(err("The file is empty: there is nothing to import."));
    }
    if head.starts_with(b"PK\x03\x04") {
        return Ok(FileType::Xlsx);
    }
    if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Err(err(
            "This is an old Excel file (.xls). Open it in Excel, save it as .xlsx, and import that.",
        ));
    }
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    // A text file: UTF-8 (a character cut at the end of the sample is fine) and no NUL bytes.
    let valid = match std::str::from_utf8(text) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && e.valid_up_to() + 4 > text.len(),
    };
    if !valid || text.contains(&0) {
        return Err(err(
            "This file is not a spreadsheet: import a CSV file or an Excel .xlsx/.xlsm file.",
        ));
    }
    Ok(FileType::Csv)
}

/// An estimate of the data rows in the file, for the progress bar.
pub fn count_rows(path: &Path, kind: FileType) -> u64 {
    match kind {
        FileType::Csv => {
            let Ok(file) = File::open(path) else { return 0 };
            let mut reader = BufReader::with_capacity(1 << 16, file);
            let mut buf = vec![0u8; 1 << 16];
            let (mut lines, mut last) = (0u64, b'\n');
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
                last = buf[n - 1];
            }
            if last != b'\n' {
                lines += 1;
            }
            lines.saturating_sub(1)
        }
        FileType::Xlsx => {
            let Ok(mut book) = open_xlsx(path) else {
                return 0;
            };
            let names = book.sheet_names();
            let mut total = 0u64;
            for name in names {
                if let Ok(cells) = book.worksheet_cells_reader(&name) {
                    let d = cells.dimensions();
                    total += u64::from(d.end.0.saturating_sub(d.start.0));
                }
            }
            total
        }
    }
}

fn open_xlsx(path: &Path) -> Result<Xlsx<BufReader<File>>, ReadError> {
    calamine::open_workbook(path).map_err(|e: calamine::XlsxError| {
        err(format!(
            "This file looks like an Excel file but cannot be read ({e}). Open it in Excel, save it as .xlsx, and try again."
        ))
    })
}

/// Reads the whole file, handing rows to `send` in groups of [`ROWS_PER_MESSAGE`];
/// `send` answers false when the reader should stop. Runs on a blocking thread.
pub fn read(
    path: &Path,
    kind: FileType,
    mut send: impl FnMut(Vec<Row>) -> bool,
) -> Result<(), ReadError> {
    match kind {
        FileType::Csv => read_csv(path, &mut send),
        FileType::Xlsx => read_xlsx(path, &mut send),
    }
}

fn read_csv(path: &Path, send: &mut dyn FnMut(Vec<Row>) -> bool) -> Result<(), ReadError> {
    let mut file = File::open(path).map_err(|e| err(format!("The file cannot be opened: {e}.")))?;
    let mut bom = [0u8; 3];
    let n = file.read(&mut bom).unwrap_or(0);
    let skip = if n == 3 && bom == *b"\xEF\xBB\xBF" {
        3
    } else {
        0
    };
    file.seek(SeekFrom::Start(skip))
        .map_err(|e| err(format!("The file cannot be read: {e}.")))?;
    let mut lines = LineCounter::new(path, skip)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::with_capacity(1 << 16, file));
    let sheet: Arc<str> = Arc::from("CSV");
    let mut record = csv::ByteRecord::new();
    let mut batch = Vec::with_capacity(ROWS_PER_MESSAGE);
    let mut number = 0u32;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(number + 1, |p| p.line() as u32);
                return Err(err(format!(
                    "Line {line} of the CSV file cannot be read: {}.",
                    plain_csv_error(&e)
                )));
            }
        }
        number = match record.position() {
            Some(p) => lines.line_at(p.byte()).unwrap_or(number + 1),
            None => number + 1,
        };
        let cells = record
            .iter()
            .take(MAX_COLUMNS)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        batch.push(Row {
            at: RowRef {
                sheet_index: 0,
                sheet: sheet.clone(),
                number,
            },
            cells,
        });
        if batch.len() == ROWS_PER_MESSAGE && !send(std::mem::take(&mut batch)) {
            return Ok(());
        }
    }
    if !batch.is_empty() {
        send(batch);
    }
    Ok(())
}

/// Line numbers of CSV records as an editor shows them: the csv crate skips
/// blank lines and counts a CRLF oddly, so lines are counted here from the
/// byte where each record starts, on a second handle of the file.
struct LineCounter {
    bytes: std::io::Bytes<BufReader<File>>,
    /// Bytes consumed so far (from the start of the text) and the line there.
    at: u64,
    line: u32,
    peeked: Option<u8>,
}

impl LineCounter {
    fn new(path: &Path, skip: u64) -> Result<LineCounter, ReadError> {
        let mut file =
            File::open(path).map_err(|e| err(format!("The file cannot be opened: {e}.")))?;
        file.seek(SeekFrom::Start(skip))
            .map_err(|e| err(format!("The file cannot be read: {e}.")))?;
        Ok(LineCounter {
            bytes: BufReader::with_capacity(1 << 16, file).bytes(),
            at: 0,
            line: 1,
            peeked: None,
        })
    }

    fn next_byte(&mut self) -> Option<u8> {
        let b = self
            .peeked
            .take()
            .or_else(|| self.bytes.next().and_then(Result::ok))?;
        self.at += 1;
        if b == b'\n' {
            self.line += 1;
        }
        Some(b)
    }

    /// The line of a record whose data starts at `byte` or just after the line breaks there.
    fn line_at(&mut self, byte: u64) -> Option<u32> {
        while self.at < byte {
            self.next_byte()?;
        }
        loop {
            let b = match self.peeked {
                Some(b) => b,
                None => {
                    let b = self.bytes.next().and_then(Result::ok)?;
                    self.peeked = Some(b);
                    b
                }
            };
            if b == b'\n' || b == b'\r' {
                self.next_byte();
            } else {
                return Some(self.line);
            }
        }
    }
}

fn plain_csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
    }
}

/// A cell as text: numbers without a needless ".0", errors as Excel shows them.
fn cell_text(value: &DataRef<'_>) -> String {
    match value {
        DataRef::Empty => String::new(),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", *f as i64)
            } else {
                f.to_string()
            }
        }
        DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        DataRef::Error(e) => format!("#{e:?}"),
        DataRef::DateTime(d) => d.as_f64().to_string(),
        other => other.as_string().unwrap_or_default(),
    }
}

fn read_xlsx(path: &Path, send: &mut dyn FnMut(Vec<Row>) -> bool) -> Result<(), ReadError> {
    let mut book = open_xlsx(path)?;
    let names = book.sheet_names();
    let mut batch = Vec::with_capacity(ROWS_PER_MESSAGE);
    for (index, name) in names.iter().enumerate() {
        let sheet: Arc<str> = Arc::from(name.as_str());
        let mut cells = book
            .worksheet_cells_reader(name)
            .map_err(|e| err(format!("The sheet {name:?} cannot be read: {e}.")))?;
        let mut current: Option<(u32, Vec<String>)> = None;
        loop {
            let cell = cells
                .next_cell()
                .map_err(|e| err(format!("The sheet {name:?} cannot be read: {e}.")))?;
            let Some(cell) = cell else { break };
            let (r, c) = cell.get_position();
            if c as usize >= MAX_COLUMNS {
                continue;
            }
            let text = cell_text(cell.get_value());
            if current.as_ref().is_some_and(|(row, _)| *row != r) {
                if let Some((row, values)) = current.take() {
                    batch.push(Row {
                        at: RowRef {
                            sheet_index: index as u32,
                            sheet: sheet.clone(),
                            number: row + 1,
                        },
                        cells: values,
                    });
                    if batch.len() == ROWS_PER_MESSAGE && !send(std::mem::take(&mut batch)) {
                        return Ok(());
                    }
                }
            }
            let (_, values) = current.get_or_insert_with(|| (r, Vec::new()));
            if values.len() <= c as usize {
                values.resize(c as usize + 1, String::new());
            }
            values[c as usize] = text;
        }
        if let Some((row, values)) = current.take() {
            batch.push(Row {
                at: RowRef {
                    sheet_index: index as u32,
                    sheet: sheet.clone(),
                    number: row + 1,
                },
                cells: values,
            });
        }
    }
    if !batch.is_empty() {
        send(batch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tt-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    }

    fn rows_of(path: &Path) -> Result<Vec<Row>, ReadError> {
        let kind = sniff(path)?;
        let mut all = Vec::new();
        read(path, kind, |rows| {
            all.extend(rows);
            true
        })?;
        Ok(all)
    }

    #[test]
    fn csv_with_a_bom_quotes_and_ragged_rows() {
        let path = temp(
            "bom.csv",
            b"\xEF\xBB\xBFcode,kind,parent code\r\nC0001,child,SB00001\n\"C,2\",child\n\nlast,parent,,extra\n",
        );
        let rows = rows_of(&path).expect("reads");
        assert_eq!(rows[0].cells, vec!["code", "kind", "parent code"]);
        assert_eq!(rows[0].at.number, 1);
        assert_eq!(rows[1].cells, vec!["C0001", "child", "SB00001"]);
        assert_eq!(rows[2].cells, vec!["C,2", "child"]);
        let numbers: Vec<u32> = rows.iter().map(|r| r.at.number).collect();
        assert_eq!(numbers, vec![1, 2, 3, 5], "numbered as the file's lines");
        assert_eq!(count_rows(&path, FileType::Csv), 4);
    }

    #[test]
    fn empty_binary_and_old_excel_files_are_refused_plainly() {
        let e = sniff(&temp("empty.csv", b"")).unwrap_err();
        assert!(e.0.contains("empty"), "{e}");
        let e = sniff(&temp("photo.jpg", b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00")).unwrap_err();
        assert!(e.0.contains("not a spreadsheet"), "{e}");
        let e = sniff(&temp("old.xls", b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1")).unwrap_err();
        assert!(e.0.contains(".xls"), "{e}");
        let e = rows_of(&temp("broken.xlsx", b"PK\x03\x04not really a zip")).unwrap_err();
        assert!(e.0.contains("cannot be read"), "{e}");
    }

    #[test]
    fn xlsx_rows_keep_text_and_whole_numbers() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.set_name("Lot 1").expect("name");
        sheet.write_string(0, 0, "Sr. No.").expect("cell");
        sheet.write_string(0, 1, "Label").expect("cell");
        sheet.write_number(1, 0, 1.0).expect("cell");
        sheet.write_string(1, 1, "LABEL NO.0016586").expect("cell");
        sheet.write_number(3, 0, 16.0).expect("cell");
        sheet.write_string(3, 1, "SB00001").expect("cell");
        let second = book.add_worksheet();
        second.write_string(1, 1, "M444-00001").expect("cell");
        let bytes = book.save_to_buffer().expect("xlsx");
        let rows = rows_of(&temp("book.xlsx", &bytes)).expect("reads");
        let seen: Vec<(u32, &str, u32, Vec<String>)> = rows
            .iter()
            .map(|r| (r.at.sheet_index, &*r.at.sheet, r.at.number, r.cells.clone()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (0, "Lot 1", 1, vec!["Sr. No.".into(), "Label".into()]),
                (0, "Lot 1", 2, vec!["1".into(), "LABEL NO.0016586".into()]),
                (0, "Lot 1", 4, vec!["16".into(), "SB00001".into()]),
                (1, "Sheet2", 2, vec![String::new(), "M444-00001".into()]),
            ]
        );
    }
}
