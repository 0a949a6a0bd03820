//! [`AvailabilityZone`]: a logical availability zone of an Azure region.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A logical availability zone: 1, 2 or 3 (a zonal VM's `zones` takes one of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u8")]
pub struct AvailabilityZone(u8);

/// A number that is not an availability zone.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("zone {zone} is not an Azure availability zone (1, 2 or 3)")]
pub struct AvailabilityZoneError {
    pub zone: i64,
}

impl AvailabilityZone {
    /// Where the rule comes from: regions with zones have three logical zones.
    pub const RULES: &'static str =
        "https://learn.microsoft.com/en-us/azure/reliability/availability-zones-overview";

    /// Checks `zone`.
    ///
    /// # Errors
    /// [`AvailabilityZoneError`] for anything but 1, 2 and 3.
    pub fn new(zone: i64) -> Result<Self, AvailabilityZoneError> {
        match u8::try_from(zone) {
            Ok(z @ 1..=3) => Ok(AvailabilityZone(z)),
            _ => Err(AvailabilityZoneError { zone }),
        }
    }

    /// The zone number: 1, 2 or 3.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for AvailabilityZone {
    type Error = AvailabilityZoneError;
    fn try_from(zone: i64) -> Result<Self, AvailabilityZoneError> {
        AvailabilityZone::new(zone)
    }
}

impl From<AvailabilityZone> for u8 {
    fn from(z: AvailabilityZone) -> u8 {
        z.0
    }
}

impl fmt::Display for AvailabilityZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_one_to_three() {
        for z in 1..=3 {
            assert_eq!(
                AvailabilityZone::new(z).unwrap().get(),
                u8::try_from(z).unwrap()
            );
        }
        for z in [0, 4, -1, 256] {
            assert_eq!(
                AvailabilityZone::new(z).unwrap_err().to_string(),
                format!("zone {z} is not an Azure availability zone (1, 2 or 3)")
            );
        }
    }
}
