//! The GPU listing: the request ([`request`]), the backends asked
//! ([`gather`]), the result as data ([`report`]), and its tables ([`render`]).

pub mod gather;
pub mod partitions;
pub mod render;
pub mod report;
pub mod request;
pub mod toleration;
