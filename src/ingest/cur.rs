//! Legacy AWS Cost and Usage Report CSVs (`lineItem/UnblendedCost`-style headers), plain or
//! gzipped, streamed through [`rollup`] like FOCUS CSVs.

use std::path::Path;

use super::export::{self, Conversion, Field, Slot, Totals};
use super::rollup::{self, Columns, Combination, Header};
use super::{Batch, IngestError};
use crate::config::CurSource;
use crate::domain::{DayRange, Dimensions};

const DAY: &str = "lineItem/UsageStartDate";
const CURRENCY: &str = "lineItem/CurrencyCode";
const LINE_ITEM_TYPE: &str = "lineItem/LineItemType";

/// Columns that become dimensions, with the CUR names each may go by (preferred first).
const DIMENSION_COLUMNS: [(Slot, &[&str]); 4] = [
    (Slot::Account, &["lineItem/UsageAccountId"]),
    (
        Slot::Service,
        &["product/ProductName", "lineItem/ProductCode"],
    ),
    (Slot::ChargeCategory, &[LINE_ITEM_TYPE]),
    (Slot::Region, &["product/region", "product/regionCode"]),
];

/// Reads every CUR file the source's path or glob matches.
pub fn fetch(
    source: &str,
    settings: &CurSource,
    range: Option<DayRange>,
) -> Result<Batch, IngestError> {
    let files = export::expand(&settings.path)?;
    let mut totals = Totals::new();
    let mut rows_read = 0;
    for file in &files {
        rows_read += read_csv(file, source, settings, range, &mut totals)?;
    }
    Ok(export::batch(source, files, totals, rows_read, range))
}

fn read_csv(
    file: &Path,
    source: &str,
    settings: &CurSource,
    range: Option<DayRange>,
    totals: &mut Totals,
) -> Result<u64, IngestError> {
    let missing = |column: &str| IngestError::MissingColumn {
        file: file.to_path_buf(),
        column: column.to_string(),
    };
    let mut fields: Vec<(Field, String)> = Vec::new();
    let choose = |header: &Header| -> Result<Columns, IngestError> {
        let find = |name: &str| header.find(&[name]).ok_or_else(|| missing(name));
        let day = find(DAY)?;
        let cost = find(&settings.cost_column)?;
        let mut kept = vec![find(CURRENCY)?];
        fields.push((Field::Currency, CURRENCY.to_string()));
        for (slot, names) in DIMENSION_COLUMNS {
            let mut any = false;
            for name in names {
                if let Some(i) = header.find(&[name]) {
                    kept.push(i);
                    fields.push((Field::Dim(slot), name.to_string()));
                    any = true;
                }
            }
            if !any && matches!(slot, Slot::Service | Slot::ChargeCategory) {
                return Err(missing(names[0]));
            }
        }
        // Tags are one column per key; user tags carry a `user:` prefix, AWS ones `aws:`.
        for key in &settings.tag_keys {
            let candidates = [
                format!("resourceTags/user:{key}"),
                format!("resourceTags/{key}"),
            ];
            if let Some(i) = header.find(&[candidates[0].as_str(), candidates[1].as_str()]) {
                kept.push(i);
                fields.push((Field::Tag(key.clone()), header.names()[i].clone()));
            }
        }
        Ok(Columns { day, cost, kept })
    };
    let rollup = rollup::sum_csv(file, choose, export::window(range))?;
    let rows = rollup.rows;
    let conversion = Conversion {
        source,
        fields,
        required: vec![
            (
                Slot::Service,
                "product/ProductName/lineItem/ProductCode".into(),
            ),
            (Slot::ChargeCategory, LINE_ITEM_TYPE.into()),
        ],
        tag_keys: &settings.tag_keys,
        defaults: Dimensions {
            provider: "AWS".into(),
            ..Dimensions::default()
        },
        map: charge_category,
    };
    let locate = |c: &Combination, _: usize| format!("line {}", c.first_line);
    export::accumulate(file, rollup, &conversion, &locate, totals)?;
    Ok(rows)
}

/// CUR line item types in FOCUS's `ChargeCategory` vocabulary, so budgets and forecasts treat
/// both sources alike (recurring fees apart from usage).
fn charge_category(slot: Slot, raw: &str) -> Option<String> {
    if slot != Slot::ChargeCategory {
        return None;
    }
    let category = match raw {
        "Usage" | "DiscountedUsage" | "SavingsPlanCoveredUsage" | "SavingsPlanNegation" => "Usage",
        "Fee" | "RIFee" | "SavingsPlanRecurringFee" | "SavingsPlanUpfrontFee" => "Purchase",
        "Tax" => "Tax",
        "Credit"
        | "Refund"
        | "BundledDiscount"
        | "EdpDiscount"
        | "PrivateRateDiscount"
        | "Discount"
        | "DistributorDiscount" => "Credit",
        _ => return None,
    };
    Some(category.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_item_types_map_to_focus_charge_categories() {
        let c = |s| charge_category(Slot::ChargeCategory, s);
        assert_eq!(c("DiscountedUsage").as_deref(), Some("Usage"));
        assert_eq!(c("RIFee").as_deref(), Some("Purchase"));
        assert_eq!(c("Tax").as_deref(), Some("Tax"));
        assert_eq!(c("Refund").as_deref(), Some("Credit"));
        assert_eq!(c("SomethingNew"), None);
        assert_eq!(charge_category(Slot::Service, "Tax"), None);
    }
}
