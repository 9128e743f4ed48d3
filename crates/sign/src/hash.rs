//! The hash functions JPKI signing uses (SHA-2 family): the workspace's one table,
//! [`mynacard_cert::digest_info`].

pub use mynacard_cert::digest_info::{HashAlgorithm, Hasher};
