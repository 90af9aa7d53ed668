//! Who may do what, following Nova's default policy: admins everything; project members
//! manage their project's servers; readers only read; keypairs belong to their user.

pub use onestack_api::Caller;
