//! The standard feature set the models train and trade on.
//!
//! Column order is part of the model contract (a trained model reads columns by position): the
//! [`REQUIRED`] TA-Lib-checked columns come first, in this order, then the extra features. Add new
//! columns at the end only.

use super::extra::{
    BbWidth, CloseLocation, EmaRatio, LogReturn, RangeBps, RealizedVol, Returns, SmaDistance,
};
use super::oscillators::{Atr, Mom, Roc, Rsi, Stoch, UltOsc, WillR};
use super::trend::{Adx, Aroon, Bbands, Cci, Ema, Macd, Sma};
use super::volume::{Ad, Mfi, Obv, TakerBuyRatio, VolumeZ, VwapDistance};
use super::{FeatureSet, Indicator};

/// The columns checked value for value against TA-Lib (strategy/tests/talib.rs with
/// `tools/train/qalpha_train/ta_reference.py`), in the order [`standard`] emits them.
pub const REQUIRED: [&str; 27] = [
    "sma_20",
    "ema_12",
    "ema_26",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "adx_14",
    "plus_di_14",
    "minus_di_14",
    "cci_20",
    "aroon_up_14",
    "aroon_down_14",
    "rsi_14",
    "stoch_k",
    "stoch_d",
    "willr_14",
    "roc_10",
    "mom_10",
    "ultosc",
    "atr_14",
    "natr_14",
    "mfi_14",
    "obv",
    "ad",
];

/// The standard set: the [`REQUIRED`] columns first, then the extras.
pub fn standard() -> FeatureSet {
    let items: Vec<Box<dyn Indicator>> = vec![
        // Trend.
        Box::new(Sma::new(20)),
        Box::new(Ema::new(12)),
        Box::new(Ema::new(26)),
        Box::new(Macd::new(12, 26, 9)),
        Box::new(Bbands::new(20, 2.0)),
        Box::new(Adx::new(14)),
        Box::new(Cci::new(20)),
        Box::new(Aroon::new(14)),
        // Oscillators.
        Box::new(Rsi::new(14)),
        Box::new(Stoch::new(14, 3, 3)),
        Box::new(WillR::new(14)),
        Box::new(Roc::new(10)),
        Box::new(Mom::new(10)),
        Box::new(UltOsc::new(7, 14, 28)),
        Box::new(Atr::new(14)),
        // Volume.
        Box::new(Mfi::new(14)),
        Box::new(Obv::new()),
        Box::new(Ad::new()),
        // Extras (the slow SMA is TA-Lib's too; the rest are not in TA-Lib).
        Box::new(Sma::new(50)),
        Box::new(VwapDistance::new(20)),
        Box::new(VolumeZ::new(20)),
        Box::new(TakerBuyRatio::new()),
        Box::new(Returns::new(&[1, 5, 15, 60])),
        Box::new(LogReturn::new()),
        Box::new(RealizedVol::new(20)),
        Box::new(RealizedVol::new(60)),
        Box::new(RangeBps::new()),
        Box::new(CloseLocation::new()),
        Box::new(EmaRatio::new(12, 26)),
        Box::new(SmaDistance::new(50)),
        Box::new(BbWidth::new(20, 2.0)),
    ];
    FeatureSet::new(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_columns_come_first_in_order_and_names_are_unique() {
        let set = standard();
        let names = set.names();
        assert!(names.len() > REQUIRED.len(), "{names:?}");
        assert_eq!(&names[..REQUIRED.len()], &REQUIRED[..], "{names:?}");
        let mut sorted = names.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            names.len(),
            "duplicate column names: {names:?}"
        );
    }
}
