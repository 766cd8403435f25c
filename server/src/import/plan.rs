//! From rows to planned operations, one planner per sheet layout: pure
//! functions with no database, so every edge case of the warehouses' sheets
//! is tested here. A planner answers groups of operations; a group is never
//! split across batches (a parent row and the run of children it closes go
//! together), and each operation names the row it came from.

use std::sync::Arc;

use traitortrack_protocol::codes::MAX_PARENT_CAPACITY;
use traitortrack_protocol::{normalize, BagKind, CodeKind, Formats};

use super::Layout;

/// Where a row is: the sheet (by position and name) and its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRef {
    pub sheet_index: u32,
    pub sheet: Arc<str>,
    pub number: u32,
}

/// One row of the file as text cells, column A first.
#[derive(Debug, Clone)]
pub struct Row {
    pub at: RowRef,
    pub cells: Vec<String>,
}

impl Row {
    fn cell(&self, i: usize) -> &str {
        self.cells.get(i).map_or("", |c| c.trim())
    }

    fn is_blank(&self) -> bool {
        self.cells.iter().all(|c| c.trim().is_empty())
    }
}

/// Why a row is refused: a stable code and a sentence in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: &'static str,
    pub message: String,
}

impl Reason {
    pub fn new(code: &'static str, message: impl Into<String>) -> Reason {
        Reason {
            code,
            message: message.into(),
        }
    }
}

/// A bill as a bills table describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBill {
    pub code: String,
    pub capacity: i32,
    pub description: Option<String>,
    pub destination: Option<String>,
    pub vehicle_number: Option<String>,
}

/// One planned operation; `code` names the row's main code for the result file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Refused before the database is asked.
    Refuse {
        at: RowRef,
        code: String,
        reason: Reason,
    },
    /// This bag exists (created when it does not).
    Bag {
        at: RowRef,
        code: String,
        kind: BagKind,
    },
    /// The child is in the parent (both created when they do not exist).
    Link {
        at: RowRef,
        child: String,
        parent: String,
    },
    /// This bill exists (created when it does not).
    Bill { at: RowRef, bill: NewBill },
    /// The bill row of a parent -> bill sheet: the bill must exist.
    BillRow { at: RowRef, code: String },
    /// The parent is on the bill.
    OnBill {
        at: RowRef,
        parent: String,
        bill: String,
    },
}

impl Op {
    pub fn at(&self) -> &RowRef {
        match self {
            Op::Refuse { at, .. }
            | Op::Bag { at, .. }
            | Op::Link { at, .. }
            | Op::Bill { at, .. }
            | Op::BillRow { at, .. }
            | Op::OnBill { at, .. } => at,
        }
    }
}

/// A file the planner cannot read at all (the whole import stops).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

/// Turns rows into operations for one layout.
pub struct Planner {
    layout: Layout,
    formats: Formats,
    sheet: Option<u32>,
    /// The first non-blank row of the sheet is still to come.
    header_pending: bool,
    /// Column positions of a table's header.
    columns: Vec<Column>,
    /// The open run of a sheet layout: rows waiting for the row that closes them.
    run: Vec<Pending>,
}

/// The longest run of rows waiting for their parent or bill row: no parent
/// holds more children, and no bill more parents.
pub const RUN_LIMIT: usize = MAX_PARENT_CAPACITY as usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Code,
    Kind,
    Parent,
    Description,
    Capacity,
    Destination,
    Vehicle,
    /// A column with no header text: ignored.
    Unnamed,
}

/// A row of an open run: a code that waits for its parent or bill, or a refusal.
#[derive(Debug, Clone)]
enum Pending {
    Code(RowRef, String),
    Refused(RowRef, String, Reason),
}

/// Lower-case letters and digits only: how headers and labels are compared.
fn squash(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn bad_code(raw: &str, e: traitortrack_protocol::CodeError) -> Reason {
    let shown: String = raw.chars().take(40).collect();
    Reason::new("bad_format", format!("{shown:?}: {}", e.message()))
}

/// The digits of a child label (`LABEL NO.0016586`, `label no.:0016586 LOT 7`):
/// `None` when the text is no label, `Some(None)` for a label without digits.
pub fn label_digits(text: &str) -> Option<Option<String>> {
    let t = text.trim_start();
    let head: String = t.chars().take(8).collect::<String>().to_ascii_lowercase();
    if !head.starts_with("label") {
        return None;
    }
    let rest = &t[5..];
    let rest = rest.trim_start();
    let rest = if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case("no") {
        &rest[2..]
    } else {
        return Some(None);
    };
    let rest = rest.trim_start_matches(|c: char| {
        c == '.' || c == ':' || c == '-' || c == '#' || c.is_whitespace()
    });
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        Some(None)
    } else {
        Some(Some(digits))
    }
}

/// Text after a leading label such as "Parent Code:" or "Bill No.", if the
/// squashed text starts with `label`.
fn after_label<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    if !squash(text).starts_with(label) {
        return None;
    }
    // Walk the original text until `label`'s letters are used up.
    let mut need = label.chars().peekable();
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if need.peek().is_none() {
            break;
        }
        if c.is_ascii_alphanumeric() {
            need.next();
        }
        end = i + c.len_utf8();
    }
    Some(
        text[end..]
            .trim_start_matches(|c: char| !c.is_alphanumeric())
            .trim(),
    )
}

impl Planner {
    pub fn new(layout: Layout, formats: Formats) -> Planner {
        Planner {
            layout,
            formats,
            sheet: None,
            header_pending: true,
            columns: Vec::new(),
            run: Vec::new(),
        }
    }

    /// The operations for one more row, in the order they are to be applied.
    pub fn push(&mut self, row: Row) -> Result<Vec<Op>, PlanError> {
        let mut out = Vec::new();
        if self.sheet != Some(row.at.sheet_index) {
            out.extend(self.close_sheet());
            self.sheet = Some(row.at.sheet_index);
            self.header_pending = true;
        }
        if row.is_blank() {
            return Ok(out);
        }
        match self.layout {
            Layout::Bags | Layout::Bills => {
                if self.header_pending {
                    self.header_pending = false;
                    self.columns = self.header(&row)?;
                    return Ok(out);
                }
                out.push(match self.layout {
                    Layout::Bags => self.bag_row(row),
                    _ => self.bill_row(row),
                });
            }
            Layout::ChildParent => {
                if std::mem::take(&mut self.header_pending)
                    && row.at.number == 1
                    && !self.is_child_parent_data(&row)
                {
                    return Ok(out);
                }
                out.extend(self.child_parent_row(row));
            }
            Layout::ParentBill => {
                if std::mem::take(&mut self.header_pending)
                    && row.at.number == 1
                    && !self.is_parent_bill_data(&row)
                {
                    return Ok(out);
                }
                out.extend(self.parent_bill_row(row));
            }
        }
        Ok(out)
    }

    /// The end of the file: what is still waiting is orphaned.
    pub fn finish(&mut self) -> Vec<Op> {
        self.close_sheet()
    }

    fn close_sheet(&mut self) -> Vec<Op> {
        let what = match self.layout {
            Layout::ChildParent => ("orphaned_child", "no parent row follows it on its sheet"),
            Layout::ParentBill => ("orphaned_parent", "no bill row follows it on its sheet"),
            _ => return Vec::new(),
        };
        std::mem::take(&mut self.run)
            .into_iter()
            .map(|p| match p {
                Pending::Code(at, code) => Op::Refuse {
                    reason: Reason::new(what.0, format!("{code}: {}.", what.1)),
                    at,
                    code,
                },
                Pending::Refused(at, code, reason) => Op::Refuse { at, code, reason },
            })
            .collect()
    }

    /// Adds a row to the open run; a run past [`RUN_LIMIT`] is refused whole.
    fn wait(&mut self, pending: Pending) -> Vec<Op> {
        let mut out = Vec::new();
        if self.run.len() >= RUN_LIMIT {
            let what = match self.layout {
                Layout::ParentBill => "parent rows with no bill row",
                _ => "child rows with no parent row",
            };
            out = std::mem::take(&mut self.run)
                .into_iter()
                .map(|p| {
                    let (at, code) = match p {
                        Pending::Code(at, code) | Pending::Refused(at, code, _) => (at, code),
                    };
                    Op::Refuse {
                        at,
                        code,
                        reason: Reason::new(
                            "run_too_long",
                            format!(
                                "More than {RUN_LIMIT} {what} in a row: nothing holds that many."
                            ),
                        ),
                    }
                })
                .collect();
        }
        self.run.push(pending);
        out
    }

    // ---- tables ------------------------------------------------------------

    fn header(&self, row: &Row) -> Result<Vec<Column>, PlanError> {
        let mut columns = Vec::with_capacity(row.cells.len());
        let mut unknown = Vec::new();
        for cell in &row.cells {
            let name = squash(cell.trim_start_matches('\u{feff}'));
            let column = match (self.layout, name.as_str()) {
                (_, "") => Column::Unnamed,
                (Layout::Bags, "code" | "qrid" | "bagcode" | "qrcode") => Column::Code,
                (Layout::Bags, "kind" | "type" | "bagtype") => Column::Kind,
                (Layout::Bags, "parentcode" | "parentqrid" | "parent" | "parentbag") => {
                    Column::Parent
                }
                (Layout::Bills, "code" | "billid" | "billno" | "billcode" | "billnumber") => {
                    Column::Code
                }
                (Layout::Bills, "description") => Column::Description,
                (Layout::Bills, "capacity" | "parentbagcount") => Column::Capacity,
                (Layout::Bills, "destination") => Column::Destination,
                (Layout::Bills, "vehiclenumber" | "vehicleno" | "vehicle") => Column::Vehicle,
                _ => {
                    unknown.push(cell.trim().chars().take(40).collect::<String>());
                    Column::Unnamed
                }
            };
            columns.push(column);
        }
        let expected = match self.layout {
            Layout::Bags => "code, kind, parent code (or qr_id, type, parent_qr_id)",
            _ => "code, description, capacity, destination, vehicle number (or bill_id, parent_bag_count)",
        };
        if !unknown.is_empty() {
            return Err(PlanError(format!(
                "Row {} of sheet {} has columns this import does not know: {}. The first row must name the columns: {expected}.",
                row.at.number,
                row.at.sheet,
                unknown.join(", ")
            )));
        }
        if !columns.contains(&Column::Code) {
            return Err(PlanError(format!(
                "Row {} of sheet {} has no code column. The first row must name the columns: {expected}.",
                row.at.number, row.at.sheet
            )));
        }
        Ok(columns)
    }

    fn column(&self, row: &Row, which: Column) -> String {
        self.columns
            .iter()
            .position(|c| *c == which)
            .map(|i| row.cell(i).to_string())
            .unwrap_or_default()
    }

    fn bag_row(&self, row: Row) -> Op {
        let raw = self.column(&row, Column::Code);
        let refuse = |code: &str, reason: Reason| Op::Refuse {
            at: row.at.clone(),
            code: code.to_string(),
            reason,
        };
        let code = match normalize(&raw) {
            Ok(c) => c,
            Err(e) => return refuse(&raw, bad_code(&raw, e)),
        };
        let by_format = match self.formats.classify(&code) {
            CodeKind::Parent { .. } => Some(BagKind::Parent),
            CodeKind::Child => Some(BagKind::Child),
            CodeKind::Unknown => None,
        };
        let kind_text = self.column(&row, Column::Kind);
        let said = match squash(&kind_text).as_str() {
            "" => None,
            "parent" | "p" => Some(BagKind::Parent),
            "child" | "c" => Some(BagKind::Child),
            _ => {
                return refuse(
                    &code,
                    Reason::new(
                        "bad_format",
                        format!("The kind must be parent or child, not {kind_text:?}."),
                    ),
                )
            }
        };
        let kind = match (said, by_format) {
            (_, None) => {
                return refuse(
                    &code,
                    Reason::new(
                        "bad_format",
                        format!("{code} is neither a parent nor a child bag code."),
                    ),
                )
            }
            (Some(said), Some(format)) if said != format => {
                return refuse(
                    &code,
                    Reason::new(
                        "bad_format",
                        format!(
                            "{code} is said to be a {} bag, but it is a {} bag code.",
                            said.as_str(),
                            format.as_str()
                        ),
                    ),
                )
            }
            (_, Some(format)) => format,
        };
        let parent_raw = self.column(&row, Column::Parent);
        if parent_raw.is_empty() {
            return Op::Bag {
                at: row.at,
                code,
                kind,
            };
        }
        if kind == BagKind::Parent {
            return refuse(
                &code,
                Reason::new(
                    "bad_format",
                    format!("{code} is a parent bag: it cannot be put in another bag."),
                ),
            );
        }
        let parent = match normalize(&parent_raw) {
            Ok(p) => p,
            Err(e) => return refuse(&code, bad_code(&parent_raw, e)),
        };
        if !matches!(self.formats.classify(&parent), CodeKind::Parent { .. }) {
            return refuse(
                &code,
                Reason::new("bad_format", format!("{parent} is not a parent bag code.")),
            );
        }
        Op::Link {
            at: row.at,
            child: code,
            parent,
        }
    }

    fn bill_row(&self, row: Row) -> Op {
        let raw = self.column(&row, Column::Code);
        let refuse = |code: &str, reason: Reason| Op::Refuse {
            at: row.at.clone(),
            code: code.to_string(),
            reason,
        };
        let code = match normalize(&raw) {
            Ok(c) => c,
            Err(e) => return refuse(&raw, bad_code(&raw, e)),
        };
        let capacity_text = self.column(&row, Column::Capacity);
        let capacity = capacity_text
            .trim()
            .trim_end_matches(".0")
            .parse::<i64>()
            .ok()
            .filter(|c| (1..=crate::bills::MAX_NEW_CAPACITY).contains(c));
        let Some(capacity) = capacity else {
            return refuse(
                &code,
                Reason::new(
                    "bad_capacity",
                    format!(
                        "The capacity must be a number of parent bags from 1 to {}, not {capacity_text:?}.",
                        crate::bills::MAX_NEW_CAPACITY
                    ),
                ),
            );
        };
        let text = |column: Column, name: &str| -> Result<Option<String>, Reason> {
            crate::bills::clean_text(name, Some(&self.column(&row, column)))
                .map_err(|e| Reason::new("bad_format", e.to_string()))
        };
        let fields = (|| {
            Ok::<_, Reason>((
                text(Column::Description, "description")?,
                text(Column::Destination, "destination")?,
                text(Column::Vehicle, "vehicle number")?,
            ))
        })();
        match fields {
            Ok((description, destination, vehicle_number)) => Op::Bill {
                at: row.at,
                bill: NewBill {
                    code,
                    capacity: capacity as i32,
                    description,
                    destination,
                    vehicle_number,
                },
            },
            Err(reason) => refuse(&code, reason),
        }
    }

    // ---- child -> parent sheets ---------------------------------------------

    fn parent_code(&self, text: &str) -> Option<String> {
        normalize(text)
            .ok()
            .filter(|c| matches!(self.formats.classify(c), CodeKind::Parent { .. }))
    }

    fn is_child_parent_data(&self, row: &Row) -> bool {
        matches!(label_digits(row.cell(1)), Some(Some(_)))
            || self.parent_code(row.cell(1)).is_some()
            || after_label(row.cell(0), "parentcode").is_some_and(|rest| {
                self.parent_code(if row.cell(1).is_empty() {
                    rest
                } else {
                    row.cell(1)
                })
                .is_some()
            })
    }

    fn child_parent_row(&mut self, row: Row) -> Vec<Op> {
        let (a, b) = (row.cell(0), row.cell(1));
        // A parent row: "Parent Code" in A, a parent code in B, or 16 in A without a label.
        let parent_text = if let Some(rest) = after_label(a, "parentcode") {
            Some(if b.is_empty() { rest } else { b })
        } else if label_digits(b).is_none()
            && (self.parent_code(b).is_some() || a.trim_end_matches(".0") == "16")
        {
            Some(b)
        } else {
            None
        };
        if let Some(text) = parent_text {
            return self.close_with_parent(&row.at, text);
        }
        let pending = match label_digits(b) {
            Some(Some(digits)) => match self.formats.classify(&digits) {
                CodeKind::Child => Pending::Code(row.at, digits),
                _ => Pending::Refused(
                    row.at,
                    digits.clone(),
                    Reason::new("bad_format", format!("{digits} is not a child bag code.")),
                ),
            },
            _ => {
                let shown: String = b.chars().take(40).collect();
                Pending::Refused(
                    row.at,
                    shown.clone(),
                    Reason::new(
                        "unreadable_label",
                        if shown.is_empty() {
                            "Column B has no label.".to_string()
                        } else {
                            format!("The label {shown:?} has no number that can be read.")
                        },
                    ),
                )
            }
        };
        self.wait(pending)
    }

    /// The parent row that closes a run: the parent first, then its children.
    fn close_with_parent(&mut self, at: &RowRef, text: &str) -> Vec<Op> {
        let run = std::mem::take(&mut self.run);
        let Some(parent) = self.parent_code(text) else {
            let shown: String = text.chars().take(40).collect();
            let reason = if shown.is_empty() {
                Reason::new(
                    "bad_format",
                    "This parent row has no parent code in column B.",
                )
            } else {
                Reason::new("bad_format", format!("{shown:?} is not a parent bag code."))
            };
            let mut out = vec![Op::Refuse {
                at: at.clone(),
                code: shown,
                reason,
            }];
            out.extend(run.into_iter().map(|p| match p {
                Pending::Code(at2, code) => Op::Refuse {
                    reason: Reason::new(
                        "orphaned_child",
                        format!(
                            "{code}: its parent row {} has no usable parent code.",
                            at.number
                        ),
                    ),
                    at: at2,
                    code,
                },
                Pending::Refused(at, code, reason) => Op::Refuse { at, code, reason },
            }));
            return out;
        };
        let mut out = vec![Op::Bag {
            at: at.clone(),
            code: parent.clone(),
            kind: BagKind::Parent,
        }];
        out.extend(run.into_iter().map(|p| match p {
            Pending::Code(at, child) => Op::Link {
                at,
                child,
                parent: parent.clone(),
            },
            Pending::Refused(at, code, reason) => Op::Refuse { at, code, reason },
        }));
        out
    }

    // ---- parent -> bill sheets ----------------------------------------------

    /// The code of a parent row: column B, or column A when B is empty.
    fn parent_bill_code<'r>(&self, row: &'r Row) -> &'r str {
        if row.cell(1).is_empty() {
            row.cell(0)
        } else {
            row.cell(1)
        }
    }

    fn is_parent_bill_data(&self, row: &Row) -> bool {
        after_label(row.cell(0), "billno").is_some()
            || self.parent_code(self.parent_bill_code(row)).is_some()
    }

    fn parent_bill_row(&mut self, row: Row) -> Vec<Op> {
        if let Some(rest) = after_label(row.cell(0), "billno") {
            let text = if row.cell(1).is_empty() {
                rest
            } else {
                row.cell(1)
            };
            let run = std::mem::take(&mut self.run);
            let bill = match normalize(text) {
                Ok(bill) => bill,
                Err(e) => {
                    let mut out = vec![Op::Refuse {
                        at: row.at.clone(),
                        code: text.chars().take(40).collect(),
                        reason: bad_code(text, e),
                    }];
                    out.extend(run.into_iter().map(|p| match p {
                        Pending::Code(at, code) => Op::Refuse {
                            reason: Reason::new(
                                "orphaned_parent",
                                format!(
                                    "{code}: its bill row {} has no usable bill code.",
                                    row.at.number
                                ),
                            ),
                            at,
                            code,
                        },
                        Pending::Refused(at, code, reason) => Op::Refuse { at, code, reason },
                    }));
                    return out;
                }
            };
            let mut out = vec![Op::BillRow {
                at: row.at,
                code: bill.clone(),
            }];
            out.extend(run.into_iter().map(|p| match p {
                Pending::Code(at, parent) => Op::OnBill {
                    at,
                    parent,
                    bill: bill.clone(),
                },
                Pending::Refused(at, code, reason) => Op::Refuse { at, code, reason },
            }));
            return out;
        }
        let raw = self.parent_bill_code(&row).to_string();
        let pending = match normalize(&raw) {
            Ok(code) => match self.formats.classify(&code) {
                CodeKind::Parent { .. } => Pending::Code(row.at, code),
                _ => Pending::Refused(
                    row.at,
                    code.clone(),
                    Reason::new("bad_format", format!("{code} is not a parent bag code.")),
                ),
            },
            Err(e) => Pending::Refused(row.at, raw.chars().take(40).collect(), bad_code(&raw, e)),
        };
        self.wait(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use traitortrack_protocol::FormatSpec;

    fn formats() -> Formats {
        Formats::new(FormatSpec::default()).expect("default formats")
    }

    fn row(sheet: u32, number: u32, cells: &[&str]) -> Row {
        Row {
            at: RowRef {
                sheet_index: sheet,
                sheet: Arc::from(format!("Sheet{}", sheet + 1)),
                number,
            },
            cells: cells.iter().map(|c| c.to_string()).collect(),
        }
    }

    /// Runs rows through a planner; the ops in apply order.
    fn plan(layout: Layout, rows: Vec<Row>) -> Result<Vec<Op>, PlanError> {
        let mut p = Planner::new(layout, formats());
        let mut out = Vec::new();
        for r in rows {
            out.extend(p.push(r)?);
        }
        out.extend(p.finish());
        Ok(out)
    }

    /// (row number, what) for each op, in row order.
    fn summary(ops: &[Op]) -> Vec<(u32, String)> {
        let mut v: Vec<(u32, u32, String)> = ops
            .iter()
            .map(|op| {
                let what = match op {
                    Op::Refuse { code, reason, .. } => format!("refuse {} {code}", reason.code),
                    Op::Bag { code, kind, .. } => format!("{} {code}", kind.as_str()),
                    Op::Link { child, parent, .. } => format!("link {child}>{parent}"),
                    Op::Bill { bill, .. } => format!("bill {} {}", bill.code, bill.capacity),
                    Op::BillRow { code, .. } => format!("billrow {code}"),
                    Op::OnBill { parent, bill, .. } => format!("onbill {parent}>{bill}"),
                };
                (op.at().sheet_index, op.at().number, what)
            })
            .collect();
        v.sort_by_key(|(s, n, _)| (*s, *n));
        v.into_iter().map(|(_, n, w)| (n, w)).collect()
    }

    fn s(n: u32, w: &str) -> (u32, String) {
        (n, w.to_string())
    }

    #[test]
    fn labels_keep_leading_zeros_and_ignore_what_follows() {
        assert_eq!(
            label_digits("LABEL NO.0016586"),
            Some(Some("0016586".into()))
        );
        assert_eq!(
            label_digits("LABEL NO.:0016586"),
            Some(Some("0016586".into()))
        );
        assert_eq!(
            label_digits("label no. 0016586 LOT 12 DT 01.02.2024"),
            Some(Some("0016586".into()))
        );
        assert_eq!(
            label_digits("Label No:0000042/lot7"),
            Some(Some("0000042".into()))
        );
        assert_eq!(label_digits("LABEL NO."), Some(None));
        assert_eq!(label_digits("LABEL NO.??"), Some(None));
        assert_eq!(label_digits("SB00001"), None);
    }

    #[test]
    fn a_child_parent_sheet_with_every_kind_of_parent_row() {
        let ops = plan(
            Layout::ChildParent,
            vec![
                row(0, 1, &["Sr. No.", "Label No."]),
                row(0, 2, &["1", "LABEL NO.0016586"]),
                row(0, 3, &["2", "label no.:0016587 LOT 4"]),
                row(0, 4, &["", "sb00001"]),
                row(0, 5, &["", ""]),
                row(0, 6, &["1", "LABEL NO.0016588"]),
                row(0, 7, &["Parent Code", "M444-00001"]),
                row(0, 8, &["1", "LABEL NO.0016589"]),
                row(0, 9, &["16", "SB00002"]),
                row(0, 10, &["1", "LABEL NO.0016590"]),
                row(0, 11, &["16", "M444-00002"]),
            ],
        )
        .expect("plans");
        assert_eq!(
            summary(&ops),
            vec![
                s(2, "link 0016586>SB00001"),
                s(3, "link 0016587>SB00001"),
                s(4, "parent SB00001"),
                s(6, "link 0016588>M444-00001"),
                s(7, "parent M444-00001"),
                s(8, "link 0016589>SB00002"),
                s(9, "parent SB00002"),
                s(10, "link 0016590>M444-00002"),
                s(11, "parent M444-00002"),
            ]
        );
        // The parent comes before its children in apply order.
        assert!(matches!(&ops[0], Op::Bag { code, .. } if code == "SB00001"));
    }

    #[test]
    fn sixteen_in_column_a_closes_a_run_only_without_a_label() {
        let ops = plan(
            Layout::ChildParent,
            vec![
                row(0, 2, &["16", "LABEL NO.0000016"]),
                row(0, 3, &["16", "XYZ"]),
            ],
        )
        .expect("plans");
        assert_eq!(
            summary(&ops),
            vec![
                s(2, "refuse orphaned_child 0000016"),
                s(3, "refuse bad_format XYZ")
            ]
        );
    }

    #[test]
    fn orphans_at_the_end_and_before_a_sheet_change() {
        let ops = plan(
            Layout::ChildParent,
            vec![
                row(0, 1, &["Sr. No.", "Code"]),
                row(0, 2, &["1", "LABEL NO.0000001"]),
                row(1, 1, &["Sr. No.", "Code"]),
                row(1, 2, &["1", "LABEL NO.0000002"]),
                row(1, 3, &["2", "SB00009"]),
                row(1, 4, &["1", "LABEL NO.0000003"]),
            ],
        )
        .expect("plans");
        assert_eq!(
            summary(&ops),
            vec![
                s(2, "refuse orphaned_child 0000001"),
                s(2, "link 0000002>SB00009"),
                s(3, "parent SB00009"),
                s(4, "refuse orphaned_child 0000003"),
            ]
        );
    }

    #[test]
    fn unreadable_labels_are_refused_and_the_run_goes_on() {
        let ops = plan(
            Layout::ChildParent,
            vec![
                row(0, 2, &["1", "LABEL NO."]),
                row(0, 3, &["2", "#N/A"]),
                row(0, 4, &["3", ""]),
                row(0, 5, &["4", "LABEL NO.12"]),
                row(0, 6, &["5", "LABEL NO.0000005"]),
                row(0, 7, &["Parent code:", "SB00003"]),
            ],
        )
        .expect("plans");
        assert_eq!(
            summary(&ops),
            vec![
                s(2, "refuse unreadable_label LABEL NO."),
                s(3, "refuse unreadable_label #N/A"),
                s(4, "refuse unreadable_label "),
                s(5, "refuse bad_format 12"),
                s(6, "link 0000005>SB00003"),
                s(7, "parent SB00003"),
            ]
        );
    }

    #[test]
    fn a_parent_row_without_a_usable_code_orphans_its_run() {
        let ops = plan(
            Layout::ChildParent,
            vec![
                row(0, 2, &["1", "LABEL NO.0000001"]),
                row(0, 3, &["Parent Code", ""]),
            ],
        )
        .expect("plans");
        assert_eq!(
            summary(&ops),
            vec![
                s(2, "refuse orphaned_child 0000001"),
                s(3, "refuse bad_format ")
            ]
        );
    }

    #[test]
    fn a_run_longer_than_any_parent_is_refused() {
        let mut rows: Vec<Row> = (0..=RUN_LIMIT as u32)
            .map(|i| row(0, i + 2, &["1", &format!("LABEL NO.{:07}", i + 1)]))
            .collect();
        rows.push(row(0, RUN_LIMIT as u32 + 3, &["", "SB00001"]));
        let ops = plan(Layout::ChildParent, rows).expect("plans");
        let too_long = ops
            .iter()
            .filter(|op| matches!(op, Op::Refuse { reason, .. } if reason.code == "run_too_long"))
            .count();
        assert_eq!(too_long, RUN_LIMIT);
        let links = ops
            .iter()
            .filter(|op| matches!(op, Op::Link { .. }))
            .count();
        assert_eq!(links, 1, "the rows after the cut still find their parent");
    }

    #[test]
    fn parent_bill_sheets_close_runs_with_bill_rows() {
        let ops = plan(
            Layout::ParentBill,
            vec![
                row(0, 1, &["Sr. No.", "Parent"]),
                row(0, 2, &["1", "SB00001"]),
                row(0, 3, &["2", "m444-00001"]),
                row(0, 4, &["3", "C0001"]),
                row(0, 5, &["BILL NO:", "b-101"]),
                row(0, 6, &["", ""]),
                row(0, 7, &["1", "SB00002"]),
                row(0, 8, &["bill no. B-102", ""]),
                row(0, 9, &["1", "SB00003"]),
                row(1, 2, &["1", "SB00004"]),
            ],
        )
        .expect("plans");
        assert_eq!(
            summary(&ops),
            vec![
                s(2, "onbill SB00001>B-101"),
                s(3, "onbill M444-00001>B-101"),
                s(4, "refuse bad_format C0001"),
                s(5, "billrow B-101"),
                s(7, "onbill SB00002>B-102"),
                s(8, "billrow B-102"),
                s(9, "refuse orphaned_parent SB00003"),
                s(2, "refuse orphaned_parent SB00004"),
            ]
        );
    }

    #[test]
    fn bags_tables_with_either_header() {
        for header in [
            &["code", "kind", "parent code"][..],
            &["\u{feff}qr_id", "type", "parent_qr_id"][..],
            &["Code", "Kind", "Parent Code", ""][..],
        ] {
            let ops = plan(
                Layout::Bags,
                vec![
                    row(0, 1, header),
                    row(0, 2, &["sb00001", "parent", ""]),
                    row(0, 3, &["c0001", "child", "SB00001"]),
                    row(0, 4, &["c0002", "", ""]),
                    row(0, 5, &["C0003", "PARENT", ""]),
                    row(0, 6, &["SB00002", "child", ""]),
                    row(0, 7, &["C0004", "box", ""]),
                    row(0, 8, &["C0005", "child", "C0001"]),
                    row(0, 9, &["x", "child", ""]),
                    row(0, 10, &["SB00003", "parent", "SB00001"]),
                ],
            )
            .expect("plans");
            assert_eq!(
                summary(&ops),
                vec![
                    s(2, "parent SB00001"),
                    s(3, "link C0001>SB00001"),
                    s(4, "child C0002"),
                    s(5, "refuse bad_format C0003"),
                    s(6, "refuse bad_format SB00002"),
                    s(7, "refuse bad_format C0004"),
                    s(8, "refuse bad_format C0005"),
                    s(9, "refuse bad_format X"),
                    s(10, "refuse bad_format SB00003"),
                ],
                "{header:?}"
            );
        }
    }

    #[test]
    fn unknown_or_missing_headers_are_a_plain_error() {
        let e = plan(Layout::Bags, vec![row(0, 1, &["code", "colour"])]).unwrap_err();
        assert!(
            e.0.contains("colour") && e.0.contains("code, kind, parent code"),
            "{e}"
        );
        let e = plan(Layout::Bills, vec![row(0, 1, &["description"])]).unwrap_err();
        assert!(e.0.contains("no code column"), "{e}");
    }

    #[test]
    fn bills_tables_with_either_header() {
        let ops = plan(
            Layout::Bills,
            vec![
                row(0, 1, &["bill_id", "parent_bag_count"]),
                row(0, 2, &["b-1", "10"]),
                row(0, 3, &["B-2", "0"]),
                row(0, 4, &["B-3", "51"]),
                row(0, 5, &["B-4", "12.0"]),
            ],
        )
        .expect("plans");
        assert_eq!(
            summary(&ops),
            vec![
                s(2, "bill B-1 10"),
                s(3, "refuse bad_capacity B-2"),
                s(4, "refuse bad_capacity B-3"),
                s(5, "bill B-4 12"),
            ]
        );
        let ops = plan(
            Layout::Bills,
            vec![
                row(
                    0,
                    1,
                    &[
                        "Code",
                        "Description",
                        "Capacity",
                        "Destination",
                        "Vehicle Number",
                    ],
                ),
                row(0, 2, &["B-9", "rice", "5", "Pune", "MH12 AB 1234"]),
            ],
        )
        .expect("plans");
        assert!(matches!(&ops[0], Op::Bill { bill, .. }
            if bill.destination.as_deref() == Some("Pune")
            && bill.vehicle_number.as_deref() == Some("MH12 AB 1234")
            && bill.description.as_deref() == Some("rice")));
    }

    #[test]
    fn blank_rows_are_skipped_and_sheets_have_their_own_headers() {
        let ops = plan(
            Layout::Bags,
            vec![
                row(0, 1, &["code"]),
                row(0, 2, &["", ""]),
                row(0, 3, &["C0001"]),
                row(1, 1, &["code", "kind"]),
                row(1, 2, &["C0002", "child"]),
            ],
        )
        .expect("plans");
        assert_eq!(
            summary(&ops),
            vec![s(3, "child C0001"), s(2, "child C0002")]
        );
    }
}
