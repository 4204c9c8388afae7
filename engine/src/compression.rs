//! permessage-deflate on the driver: inflating what arrives, compressing what is sent.

use sockeye_proto::{DeflateConfig, DeflateParams, Role};

/// The agreed compression of one connection and its codec state.
#[derive(Debug)]
pub(crate) struct Compression {
    params: DeflateParams,
    #[allow(dead_code)]
    role: Role,
    #[allow(dead_code)]
    config: DeflateConfig,
}

impl Compression {
    pub(crate) fn new(role: Role, params: DeflateParams, config: DeflateConfig) -> Self {
        Compression {
            params,
            role,
            config,
        }
    }

    pub(crate) fn params(&self) -> DeflateParams {
        self.params
    }
}
