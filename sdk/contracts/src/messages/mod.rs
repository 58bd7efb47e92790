//! Every message body in the schema, one typed struct each, with `to_cell` / `from_cell` through
//! [`crate::codec::CellCodec`].

mod escrow;
mod root;
mod stake;

pub use escrow::*;
pub use root::*;
pub use stake::*;
