//! Calendar dates as the card writes them (`YYYYMMDD` ASCII) and the Japanese era years used by
//! the visual AP's keys: the workspace's one calendar, [`mynacard_cert::calendar`].

pub use mynacard_cert::calendar::{Date, Era};
