//! Rows of the `FORM` records: one `form` row per deployed form, with its
//! JSON as `schema`; `DELETED` removes it.

use engine::forms::FormRecord;
use engine::Intent;

use super::{Batch, Row};
use crate::upsert::{Table, Val};

pub(super) static FORM: Table = Table {
    name: "form",
    columns: &[
        "form_key",
        "form_id",
        "version",
        "version_tag",
        "resource_name",
        "schema",
        "tenant_id",
    ],
    key_columns: 1,
    keep_first: &[],
    on_conflict: "DO NOTHING",
};

/// `DELETE` statement for a deleted form.
pub(super) const DELETE_FORM: &str = "DELETE FROM form WHERE form_key = $1";

impl Batch {
    pub(super) fn form(&mut self, at: &Row, f: &FormRecord) {
        let m = &f.metadata;
        match at.intent {
            Intent::Created => self.forms.push(vec![
                m.form_key.into(),
                m.form_id.as_ref().into(),
                i64::from(m.version).into(),
                Val::Text((!m.version_tag.is_empty()).then(|| m.version_tag.clone())),
                m.resource_name.as_str().into(),
                Val::Text(Some(String::from_utf8_lossy(&f.resource).into_owned())),
                at.tenant.as_str().into(),
            ]),
            Intent::Deleted => {
                self.forms.remove(&[m.form_key.into()]);
                self.deleted.push((DELETE_FORM, m.form_key));
            }
            _ => {}
        }
    }
}
