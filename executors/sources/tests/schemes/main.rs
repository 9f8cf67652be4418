//! The s3, stac and gbif fetchers and the format checks against real
//! servers: the devserver (started in-process over
//! `deploy/devserver/fixtures`, answering as GBIF's and the STAC API's
//! documentation show) and, when `TWINFLOW_TEST_S3=1` (scripts/test starts
//! deploy/dev/s3-up and sets it), the Ceph RGW.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail with a message"
)]

mod formats;
mod gbif;
mod s3;
mod stac;
mod stac_file;
mod support;
