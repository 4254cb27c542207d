//! Everything that speaks CQL: building the session, setting up the schema, preparing the
//! ops, binding generated values without allocating, and classifying errors into a closed
//! set of kinds. It serves the engine and never calls back into it.

mod agreement;
pub mod cqltype;
pub mod encode;
mod errors;
pub mod expect;
mod indexes;
pub mod init;
pub mod nodes;
mod refusal;
mod row;
mod session;
pub mod template;
pub mod verify;

pub use errors::{ErrorKind, classify};
pub use nodes::Tracking;
pub use row::{Arg, BoundRow, Marker, bind_args};
pub use session::{ConnectError, Prepared, PreparedOp, connect, prepare, setup_schema};
