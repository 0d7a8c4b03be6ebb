//! Legacy AWS Cost and Usage Report CSVs (`lineItem/UnblendedCost`-style headers), plain or
//! gzipped, streamed through [`super::rollup`] like FOCUS CSVs.

use super::export::{self, Conversion, CsvLayout, Slot, TagColumns};
use super::{Batch, IngestError};
use crate::config::CurSource;
use crate::domain::{DayRange, Dimensions};

/// Columns that become dimensions, with the CUR names each may go by (preferred first).
const DIMENSION_COLUMNS: [(Slot, &[&str]); 4] = [
    (Slot::Account, &["lineItem/UsageAccountId"]),
    (
        Slot::Service,
        &["product/ProductName", "lineItem/ProductCode"],
    ),
    (Slot::ChargeCategory, &["lineItem/LineItemType"]),
    (Slot::Region, &["product/region", "product/regionCode"]),
];

/// Reads every CUR file the source's path or glob matches.
pub fn fetch(
    source: &str,
    settings: &CurSource,
    range: Option<DayRange>,
) -> Result<Batch, IngestError> {
    let layout = CsvLayout {
        day: "lineItem/UsageStartDate",
        cost: &settings.cost_column,
        currency: "lineItem/CurrencyCode",
        dims: &DIMENSION_COLUMNS,
        required: &[Slot::Service, Slot::ChargeCategory],
        // User-defined tags carry a `user:` prefix, AWS-generated ones (`aws:createdBy`) none.
        tags: TagColumns::PerKey(&["resourceTags/user:", "resourceTags/"]),
    };
    export::fetch_files(source, &settings.path, range, |file, totals| {
        let conversion = Conversion {
            source,
            fields: Vec::new(),
            required: Vec::new(),
            tag_keys: &settings.tag_keys,
            defaults: Dimensions {
                provider: "AWS".into(),
                ..Dimensions::default()
            },
            map: charge_category,
        };
        export::read_csv(file, &layout, conversion, range, totals)
    })
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
